package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
)

// Group commit. With synchronous=FULL every commit waits for the disk, and
// committing each publish on its own was most of the server's CPU under
// load. One writer goroutine, owned by the DB and ended by Close, takes the
// first request waiting, then every request that waits while it writes, in
// one BEGIN IMMEDIATE transaction (each request but the first inside its
// own SAVEPOINT, so a publish that fails is rolled back alone and the
// others commit), commits once, hands the deliveries to the sink in commit
// order and then answers the callers. Under low load a batch holds one
// request and costs what a lone transaction would.
//
// Since one goroutine writes every publish and delivers each batch before it
// starts the next, seqs are assigned, committed and delivered in one order.
//
// A caller that gives up (its context ends) before the writer has taken its
// request is answered at once and its publish is never written. Once the
// writer has taken a request it runs and commits with its batch; the
// caller's answer is then dropped (the error says so), and a retry with the
// same Idempotency-Key finds the first answer.
const (
	// maxBatch bounds the requests of one transaction.
	maxBatch = 256
	// maxBatchCopies bounds the inbox rows one transaction writes: the
	// writer commits once it has written that many, and the requests
	// still waiting start the next batch. A single publish to more
	// recipients runs alone.
	maxBatchCopies = 20_000
	// maxWaiting bounds the requests queued for the writer; beyond it
	// callers block, each with its own context.
	maxWaiting = 1024
	// truncateTimeout bounds one attempt to truncate the WAL.
	truncateTimeout = 10 * time.Second
	// walRetry spaces out attempts to truncate the WAL that readers kept
	// from completing.
	walRetry = 100 * time.Millisecond
)

// errClosed answers requests made or still waiting at Close.
var errClosed = errors.New("sqlite: store closed")

// requestKind says what a request writes.
type requestKind uint8

const (
	kindPublish   requestKind = iota // a persisted publish
	kindEphemeral                    // an ephemeral publish with an Idempotency-Key: only the key is stored
	kindProbe                        // Ping's test write
	kindFunc                         // any other write: the request's fn (the notification center's)
)

// States of a request, moved by compare-and-swap so that the writer and a
// caller that gives up agree on whether the request runs.
const (
	stateWaiting int32 = iota
	stateTaken
	stateAbandoned
)

// request is one write handed to the writer.
type request struct {
	kind  requestKind
	mark  bool // a mark (read, unread, seen, archive, unarchive): see runBatch
	m     store.Message
	idem  *store.Idempotency
	state atomic.Int32
	done  chan struct{} // closed once res and err are final

	res store.PublishResult
	err error
	// delivery holds a committed publish's recipients (none for a
	// replayed or recipient-less one); ephemeral is set for a kindEphemeral
	// that is not a replay.
	delivery  store.Delivery
	ephemeral *store.Ephemeral

	// fn is a kindFunc's write; it leaves its answer in n and counts, and
	// what the sink gets in deliveries (after delivery) and states.
	fn         func(ctx context.Context, b *batch, r *request) error
	n          int
	counts     store.Counts
	deliveries []store.Delivery
	states     []store.StateChange
}

func newRequest(kind requestKind, m store.Message, idem *store.Idempotency) *request {
	return &request{kind: kind, m: m, idem: idem, done: make(chan struct{})}
}

// take claims r for the writer; false if its caller gave up first.
func (r *request) take() bool { return r.state.CompareAndSwap(stateWaiting, stateTaken) }

// writer owns the request queue and the goroutine that drains it.
type writer struct {
	db      *DB
	reqs    chan *request
	quit    chan struct{}
	stopped chan struct{}

	mu     sync.RWMutex // held for reading while a request is queued; guards closed
	closed bool
}

func startWriter(db *DB) *writer {
	w := &writer{db: db, reqs: make(chan *request, maxWaiting), quit: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// close stops the writer after its batch in flight and refuses the requests
// still queued. Enqueues in progress finish first (they hold mu), and an
// enqueue that finds closed set also finds quit closed.
func (w *writer) close() {
	w.mu.Lock()
	already := w.closed
	if !already {
		w.closed = true
		close(w.quit)
	}
	w.mu.Unlock()
	if already {
		return
	}
	<-w.stopped
	for {
		select {
		case r := <-w.reqs:
			r.err = fmt.Errorf("publish: %w", errClosed)
			close(r.done)
		default:
			return
		}
	}
}

// submit queues r and waits until it is answered or ctx ends (see the
// package comment above for what an ended context means).
func (db *DB) submit(ctx context.Context, r *request) error {
	if err := db.w.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(stateWaiting, stateAbandoned) {
		return fmt.Errorf("gave up waiting for the writer, nothing written: %w", ctx.Err())
	}
	select {
	case <-r.done:
		return nil
	default:
		return fmt.Errorf("gave up waiting for the commit; the write commits with its batch: %w", ctx.Err())
	}
}

// enqueue hands r to the writer, blocking while the queue is full.
func (w *writer) enqueue(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nothing written: %w", err)
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	select {
	case w.reqs <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for room in the write queue, nothing written: %w", ctx.Err())
	}
}

// run writes batches until close.
func (w *writer) run() {
	defer close(w.stopped)
	for {
		select {
		case <-w.quit: // before any queued request: Close refuses those
			return
		default:
		}
		select {
		case <-w.quit:
			return
		case r := <-w.reqs:
			if !r.take() { // never started: its caller was answered
				continue
			}
			// A batch of marks hands back the first other request it
			// took, which starts the next batch.
			for r != nil {
				r = w.db.runBatch(r, w.reqs)
			}
		}
	}
}

// runBatch writes first (taken), and then what waits on more, in one
// transaction, until more runs dry or the batch reaches its bounds (what is
// left stays queued for the next batch); then it hands the deliveries to the
// sink and answers the callers. Requests that arrive while the batch is
// being written join it before it commits. When the transaction cannot
// begin (another process has held the write lock past the busy timeout, or
// the disk fails), the requests waiting (up to a batch of them) fail with
// first: each would only wait as long again.
//
// A batch that starts with a mark holds marks only and commits with
// synchronous=NORMAL, without waiting for the WAL to reach the disk (as
// PostgreSQL's marks do, see the README): the commit's fsync was most of a
// mark's time. The mark is still atomic and ordered with every other
// write, and the next commit that waits for the disk (any other write)
// makes it durable too, being later in the same WAL; a crash of the
// machine before then can lose it, and the item shows as before. The
// first other request such a batch takes is handed back as next.
func (db *DB) runBatch(first *request, more <-chan *request) (next *request) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	defer db.boundWALLocked()
	// No deadline: the driver watches a context that can end with a
	// goroutine per statement, which cost more than the statement. SQLite's
	// busy timeout bounds the waits for other processes' locks.
	ctx := context.Background()

	b := &batch{db: db}
	tx, err := db.begin(ctx, first.mark)
	if err != nil {
		b.members = append(b.members, first)
		for r := b.next(more); r != nil; r = b.next(more) {
			b.members = append(b.members, r)
		}
		b.fail(unavailable("begin", err))
		return nil
	}
	defer tx.end()
	b.tx = tx.Tx
	for r := first; r != nil; r = b.next(more) {
		if first.mark && !r.mark {
			next = r
			break
		}
		if err := b.add(ctx, r); err != nil {
			b.fail(err)
			return next
		}
	}
	if db.beforeCommit != nil {
		b.reportCommit(ctx)
	}
	if err := tx.Commit(); err != nil {
		b.fail(unavailable("commit", err))
		return next
	}
	if db.afterCommit != nil {
		db.afterCommit(b.titles())
	}
	b.deliver()
	for _, r := range b.members {
		close(r.done)
	}
	return next
}

// reportCommit calls the test hook beforeCommit.
func (b *batch) reportCommit(ctx context.Context) {
	level := -1
	_ = b.tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level)
	marks := 0
	for _, r := range b.members {
		if r.mark {
			marks++
		}
	}
	b.db.beforeCommit(level, marks, len(b.members)-marks)
}

// writeTx is a batch's transaction. A batch of marks holds its own
// connection of the pool (conn), set to synchronous=NORMAL until end;
// every other batch begins on the pool as it always did.
type writeTx struct {
	*sqlx.Tx
	conn *sqlx.Conn
}

// begin starts a batch's transaction; lazy, it commits without waiting
// for the disk. PRAGMA synchronous cannot change inside a transaction, so
// it is set on the connection before and set back by end.
func (db *DB) begin(ctx context.Context, lazy bool) (*writeTx, error) {
	if !lazy {
		tx, err := db.x.BeginTxx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &writeTx{Tx: tx}, nil
	}
	conn, err := db.x.Connx(ctx)
	if err != nil {
		return nil, err
	}
	t := &writeTx{conn: conn}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		t.end()
		return nil, err
	}
	if t.Tx, err = conn.BeginTxx(ctx, nil); err != nil {
		t.Tx = nil
		t.end()
		return nil, err
	}
	return t, nil
}

// end rolls back what was not committed; for a batch of marks it sets
// synchronous back to FULL and returns the connection to the pool (or
// closes it when that fails, so no other write runs with NORMAL).
func (t *writeTx) end() {
	if t.Tx != nil {
		_ = t.Rollback()
	}
	if t.conn == nil {
		return
	}
	if _, err := t.conn.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); err != nil {
		_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = t.conn.Close()
}

// batch is one transaction of the writer.
type batch struct {
	db      *DB
	tx      *sqlx.Tx
	members []*request
	copies  int                   // inbox rows written
	stmts   map[string]*sqlx.Stmt // the DB's prepared statements bound to tx
}

// next takes a request waiting on more, or returns nil when none waits or
// the batch is full. Requests whose callers gave up are dropped.
func (b *batch) next(more <-chan *request) *request {
	for len(b.members) < maxBatch && b.copies < maxBatchCopies {
		select {
		case r := <-more:
			if r.take() {
				return r
			}
		default:
			return nil
		}
	}
	return nil
}

// errRolledBack ends a batch whose first request failed.
var errRolledBack = errors.New("rolled back")

// add runs r inside the batch. r's own failure is kept in r.err; the error
// returned means the transaction cannot go on. Every request but the first
// runs inside a SAVEPOINT, so that its failure undoes only its own writes;
// the first needs none: when it fails, the batch ends and its rollback
// undoes exactly that request.
func (b *batch) add(ctx context.Context, r *request) error {
	savepoint := len(b.members) > 0
	b.members = append(b.members, r)
	if savepoint {
		if err := b.exec(ctx, `SAVEPOINT request`); err != nil {
			return unavailable("savepoint", err)
		}
	}
	r.err = b.db.write(ctx, b, r)
	if r.err == nil {
		b.copies += len(r.delivery.Recipients)
		for _, d := range r.deliveries {
			b.copies += len(d.Recipients)
		}
		if savepoint {
			if err := b.exec(ctx, `RELEASE request`); err != nil {
				return unavailable("release savepoint", err)
			}
		}
		return nil
	}
	if !savepoint {
		return errRolledBack
	}
	// A failed statement may have ended the whole transaction (SQLite
	// rolls back on some I/O errors): then the savepoint is gone too, and
	// nothing more may run in it.
	if err := b.exec(ctx, `ROLLBACK TO request`); err != nil {
		return unavailable("roll back savepoint", err)
	}
	if err := b.exec(ctx, `RELEASE request`); err != nil {
		return unavailable("release savepoint", err)
	}
	return nil
}

// exec runs a prepared statement of the DB inside the batch.
func (b *batch) exec(ctx context.Context, query string, args ...any) error {
	st, err := b.stmt(ctx, query)
	if err == nil {
		_, err = st.ExecContext(ctx, args...)
	}
	return err
}

// stmt returns the DB's prepared statement for query, bound to the batch's
// transaction once per batch.
func (b *batch) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st := b.stmts[query]; st != nil {
		return st, nil
	}
	st, err := b.db.prepared(ctx, b.tx, query)
	if err != nil {
		return nil, err
	}
	if b.stmts == nil {
		b.stmts = make(map[string]*sqlx.Stmt)
	}
	b.stmts[query] = st
	return st, nil
}

// fail answers every member with err, except those that failed on their
// own and keep their error; nothing of the batch was committed.
func (b *batch) fail(err error) {
	for _, r := range b.members {
		if r.err == nil {
			r.err = err
		}
		r.res, r.delivery, r.ephemeral = store.PublishResult{}, store.Delivery{}, nil
		r.deliveries, r.states = nil, nil
		close(r.done)
	}
}

// deliver hands the committed batch to the sink, in commit order.
func (b *batch) deliver() {
	s := b.db.sink.Load()
	if s == nil {
		return
	}
	for _, r := range b.members {
		switch {
		case r.err != nil:
			continue
		case len(r.delivery.Recipients) > 0:
			s.Deliver(r.delivery)
		case r.ephemeral != nil:
			s.DeliverEphemeral(*r.ephemeral)
		}
		for _, d := range r.deliveries {
			if len(d.Recipients) > 0 {
				s.Deliver(d)
			}
		}
		for _, c := range r.states {
			s.State(c)
		}
	}
}

func (b *batch) titles() []string {
	t := make([]string, 0, len(b.members))
	for _, r := range b.members {
		t = append(t, r.m.Title)
	}
	return t
}

// unavailable marks an error of the database (not of one request) as
// store.ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

// boundWALLocked truncates the WAL once it is larger than db.walLimit; the
// caller holds writeMu and has just committed. The listener's checkpoints
// let the WAL restart from its beginning every restartEvery (see
// checkpoint), but writes faster than the WAL's limit per restartEvery, a
// reader holding an old snapshot, or no listener at all can let it grow;
// this bounds it then.
// Under writeMu no other write of this process runs, so a
// TRUNCATE checkpoint waits only for readers of older snapshots (briefly:
// its busy timeout is short, and a failed attempt is retried after
// walRetry). The WAL so stays below the limit plus one transaction.
func (db *DB) boundWALLocked() {
	fi, err := os.Stat(db.path + "-wal")
	if err != nil || fi.Size() <= db.walLimit || time.Since(db.lastTruncate) < walRetry {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), truncateTimeout)
	defer cancel()
	conn, err := db.x.Connx(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	// Errors and a busy answer leave the WAL as it is; a later write
	// tries again.
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 200`); err != nil {
		return
	}
	var busy, frames, copied int
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied)
	if err != nil || busy != 0 {
		db.lastTruncate = time.Now()
	}
	_, _ = conn.ExecContext(ctx, `PRAGMA busy_timeout = 5000`)
}
