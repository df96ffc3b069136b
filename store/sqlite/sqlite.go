// Package sqlite is Herald's embedded store: one SQLite file in WAL mode,
// for a single instance.
//
// All writes go through one mutex (writeMu) and BEGIN IMMEDIATE
// transactions, so commits happen one at a time; deliveries are handed to the
// sink before the mutex is released, so they reach streams in commit order.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/corp/herald/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*DB)(nil)

// DB is the SQLite store.
type DB struct {
	x       *sqlx.DB
	writeMu sync.Mutex // serializes write transactions and the deliveries that follow them
	sink    atomic.Pointer[sinkBox]

	stmtMu sync.Mutex // guards stmts
	stmts  map[string]*sqlx.Stmt
}

type sinkBox struct{ store.Sink }

// pragmas go in the DSN so every pooled connection gets them. _txlock=immediate
// makes BEGIN take the write lock at once, which avoids "database is locked"
// when two read-then-write transactions meet. wal_autocheckpoint(0): the
// listener checkpoints in the background instead (see checkpoints).
const pragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)&_pragma=cache_size(-512)&_txlock=immediate"

// Open opens (creating if needed) the SQLite database at path and applies
// the embedded migrations. path may carry a "sqlite:" prefix.
func Open(ctx context.Context, path string) (*DB, error) {
	path = strings.TrimPrefix(path, "sqlite:")
	path = strings.TrimPrefix(path, "//")
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a file path is required (\":memory:\" is one database per connection)")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Readers run concurrently in WAL mode; writers are serialized by writeMu.
	x.SetMaxOpenConns(8)
	x.SetMaxIdleConns(8)
	db := &DB{x: x, stmts: make(map[string]*sqlx.Stmt)}
	if err := db.Migrate(ctx); err != nil {
		x.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies the embedded migrations that are not applied yet.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.x.DB, fsys)
	if err != nil {
		return fmt.Errorf("sqlite migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite migrate: %w", err)
	}
	return nil
}

// Close closes the prepared statements and the database.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	clear(db.stmts)
	db.stmtMu.Unlock()
	return db.x.Close()
}

// prepared returns query as a prepared statement for q (the DB, or a
// transaction). Statements are prepared once and kept: SQLite otherwise
// parses the SQL of every statement anew, which was 14% of the server's CPU
// at 1,000 publishes per second.
func (db *DB) prepared(ctx context.Context, q querier, query string) (*sqlx.Stmt, error) {
	db.stmtMu.Lock()
	st := db.stmts[query]
	db.stmtMu.Unlock()
	if st == nil {
		fresh, err := db.x.PreparexContext(ctx, query)
		if err != nil {
			return nil, err
		}
		db.stmtMu.Lock()
		if st = db.stmts[query]; st == nil {
			st = fresh
			db.stmts[query] = st
		} else {
			fresh.Close() // another goroutine prepared it meanwhile
		}
		db.stmtMu.Unlock()
	}
	if tx, ok := q.(*sqlx.Tx); ok {
		return tx.StmtxContext(ctx, st), nil
	}
	return st, nil
}

// errNoListener is Ping's answer before Listen has registered its sink:
// publishes would be stored but not delivered live.
var errNoListener = errors.New("listener not running")

// Ping checks that the database answers and that a listener is registered.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.x.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w: %w", store.ErrUnavailable, err)
	}
	if db.sink.Load() == nil {
		return fmt.Errorf("ping sqlite: %w: %w", store.ErrUnavailable, errNoListener)
	}
	return nil
}

// Listen hands deliveries to sink until ctx ends. SQLite has one instance, so
// the deliveries are this process's own publishes, handed over right after
// each commit. While it runs it also checkpoints the WAL (see checkpoints).
func (db *DB) Listen(ctx context.Context, sink store.Sink) error {
	if !db.sink.CompareAndSwap(nil, &sinkBox{sink}) {
		return errors.New("sqlite: a listener is already running")
	}
	db.checkpoints(ctx)
	db.sink.Store(nil)
	return nil
}

// checkpointEvery is how often the WAL is copied back into the database;
// walLimit (frames of 4 KiB) is the size past which a checkpoint also
// truncates the WAL.
const (
	checkpointEvery = time.Second
	walLimit        = 10000
)

// checkpoints copies the WAL back into the database in the background until
// ctx ends. SQLite's automatic checkpoint runs inside the commit that
// crosses 1,000 WAL pages, so every few hundred publishes one publish, and
// every publish queued behind the writer lock, waited for it: it made the
// tail of publish-to-delivery latency (p99 7.2 ms -> 2.9 ms at 1,000
// publishes/s without it). The DSN turns the automatic one off; a PASSIVE
// checkpoint waits for no reader or writer. The WAL restarts from its start
// once a checkpoint is complete and no reader holds an old snapshot; should
// long readers keep that from happening and the WAL pass walLimit, a
// TRUNCATE checkpoint (which waits for readers) shrinks it. Without a
// listener (the CLI tools) SQLite checkpoints when the last connection
// closes.
func (db *DB) checkpoints(ctx context.Context) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Errors are not fatal: the next tick tries again, and the WAL
			// only grows meanwhile.
			var busy, frames, done int
			err := db.x.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
			if err == nil && frames > walLimit {
				_, _ = db.x.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			}
		}
	}
}

// deliver hands a committed notification to the sink, if one listens.
// Callers hold writeMu so deliveries keep commit order.
func (db *DB) deliver(d store.Delivery) {
	if s := db.sink.Load(); s != nil {
		s.Deliver(d)
	}
}

func (db *DB) notifyEmployee(id int64, deleted bool) {
	if s := db.sink.Load(); s != nil {
		s.EmployeeChanged(id, deleted)
	}
}

// wrap adds context to err and marks database failures as ErrUnavailable,
// leaving the domain errors and cancellations as they are.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrIdempotencyMismatch),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	default:
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
}

// querier is what both *sqlx.DB and *sqlx.Tx offer.
type querier interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var _ querier = (*sqlx.Tx)(nil)
var _ querier = (*sqlx.DB)(nil)

// noRows turns sql.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
