package postgres

import (
	"context"
	"sync"

	"github.com/jmoiron/sqlx"
)

// The reads an employee's client makes most (a page of the inbox, the
// counts, the replay of a stream) run as prepared statements. Sent as a
// one-off query, each is planned on every call, and on an inbox of 100,000
// items planning took more than running: 0.3-0.5 ms against 0.2 ms for a
// page (EXPLAIN ANALYZE), and a page took 0.97-1.12 ms where the prepared
// statement took 0.32-0.37 ms (pgbench, 3,000 calls). A prepared statement
// is planned for its first calls' arguments and then runs its cached
// generic plan, but only when that plan does not look dearer than the
// ones made for the arguments: the statements are written so that it does
// not (limitRows, opaqueTime), which TestCenterPlansKept checks. (The
// pgbench figures above used literal values; with parameters, before that
// was done, the page and the counts were planned again on every call.)
//
// database/sql prepares a statement on each connection the first time it
// runs there, and again on a new connection after one is lost. Server-side
// prepared statements need a session of their own: a pooler in front of
// PostgreSQL must be in session mode (LISTEN needs it anyway).

// preparedStmts holds the DB's prepared statements by query text. The
// inbox page's query is built from its filters, so it holds one statement
// per combination of filters and size of page used (at most 24 × 5, see
// limitRows).
type preparedStmts struct {
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
}

// prepared returns the statement of query, preparing it on first use. A
// failure to prepare (the database is down) is returned and not kept: the
// next call tries again.
func (db *DB) prepared(ctx context.Context, query string) (*sqlx.Stmt, error) {
	p := &db.stmts
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.m[query]; ok {
		return s, nil
	}
	s, err := db.x.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if p.m == nil {
		p.m = make(map[string]*sqlx.Stmt)
	}
	p.m[query] = s
	return s, nil
}

// closeStmts closes the prepared statements (Close).
func (db *DB) closeStmts() {
	p := &db.stmts
	p.mu.Lock()
	defer p.mu.Unlock()
	for q, s := range p.m {
		_ = s.Close()
		delete(p.m, q)
	}
}
