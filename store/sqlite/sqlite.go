// Package sqlite is Herald's embedded store: one SQLite file in WAL mode,
// for a single instance.
//
// Publishes go through one writer goroutine (writer.go) that runs whatever
// publishes are waiting in one BEGIN IMMEDIATE transaction and commits them
// together (group commit), then hands their deliveries to the sink in
// commit order. The other writes (directory, read marks) take writeMu, which
// the writer holds for each batch, so sink calls come one at a time.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
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
	path    string      // the database file
	file    os.FileInfo // the database file as opened, to notice it being removed or replaced
	lock    *os.File    // holds the instance lock (InstanceLock), or nil
	writeMu sync.Mutex  // serializes write transactions and the sink calls that follow them; guards lastTruncate
	sink    atomic.Pointer[sinkBox]
	// deletes counts employee deletions twice: once before the delete and
	// once after the sink has ended the employee's streams, so it is odd
	// while one is under way (they run under writeMu, one at a time).
	// PublishEphemeral reads it to trust open streams instead of the
	// directory (onlineTargets).
	deletes atomic.Uint64
	w       *writer

	// walLimit is the WAL size in bytes past which the writer truncates
	// the WAL between writes (see boundWALLocked).
	walLimit     int64
	lastTruncate time.Time // of the last attempt to truncate the WAL that readers kept from completing
	// checkpointEvery is how often the listener copies the WAL back into
	// the database, and restartEvery how often it completes the copy with
	// writes held, so that the WAL restarts (see checkpoint).
	checkpointEvery, restartEvery time.Duration
	// afterCommit, when set (by tests only), is called by the writer
	// between a batch's commit and its deliveries, with the batch's titles.
	afterCommit func(titles []string)
	// beforeCommit, when set (by tests only), is called by the writer
	// before a batch commits, with the transaction's synchronous level
	// (1 NORMAL, 2 FULL) and how many of its requests are marks and not.
	beforeCommit func(level, marks, others int)

	stmtMu sync.Mutex // guards stmts
	stmts  map[string]*sqlx.Stmt

	closeOnce sync.Once
	closeErr  error
}

type sinkBox struct{ store.Sink }

// pragmas go in the DSN so every pooled connection gets them. _txlock=immediate
// makes BEGIN take the write lock at once, which avoids "database is locked"
// when two read-then-write transactions meet. synchronous(FULL): a commit is
// on disk before it is answered; the writer groups concurrent publishes so
// they share that sync. wal_autocheckpoint(0): checkpoints run outside the
// commits (see checkpoints and boundWALLocked). cache_size(-512): 512 KiB of
// page cache per pooled connection instead of SQLite's 2 MiB; the kernel
// caches the file anyway, and eight full caches were most of the memory
// that thousands of streams seemed to cost after their connect storm.
const pragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)&_pragma=cache_size(-512)&_txlock=immediate"

// defaultWALLimit bounds the WAL (see boundWALLocked).
const defaultWALLimit = 128 << 20

// ErrLocked means another Herald instance serves the database (InstanceLock).
var ErrLocked = errors.New("another Herald instance is serving this SQLite database")

// errHeld is lockFile's answer when the lock is taken.
var errHeld = errors.New("lock held")

// Option configures Open.
type Option func(*options)

type options struct{ lock bool }

// InstanceLock makes Open take an exclusive lock on PATH.lock, beside the
// database, and hold it until Close; Open fails with ErrLocked while another
// holder has it. herald serve takes it: live delivery reaches only the
// streams of the instance that published, so a second server on one file
// would silently miss the first one's publishes. Short commands (herald
// employees, herald migrate) do not: SQLite lets them write beside a
// running server.
func InstanceLock() Option { return func(o *options) { o.lock = true } }

// Open opens (creating if needed) the SQLite database at path and applies
// the embedded migrations. path may carry a "sqlite:" prefix.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	path = strings.TrimPrefix(path, "sqlite:")
	path = strings.TrimPrefix(path, "//")
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a file path is required (\":memory:\" is one database per connection)")
	}
	db := &DB{path: path, walLimit: defaultWALLimit, checkpointEvery: defaultCheckpointEvery, restartEvery: defaultRestartEvery, stmts: make(map[string]*sqlx.Stmt)}
	if o.lock {
		if err := db.takeLock(); err != nil {
			return nil, err
		}
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		db.releaseLock()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Readers run concurrently in WAL mode; writers are serialized by writeMu.
	x.SetMaxOpenConns(8)
	x.SetMaxIdleConns(8)
	db.x = x
	if err := db.Migrate(ctx); err != nil {
		x.Close()
		db.releaseLock()
		return nil, err
	}
	if db.file, err = os.Stat(path); err != nil {
		x.Close()
		db.releaseLock()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.w = startWriter(db)
	return db, nil
}

// takeLock takes the instance lock on path.lock.
func (db *DB) takeLock() error {
	lockPath := db.path + ".lock"
	f, err := lockFile(lockPath)
	if errors.Is(err, errHeld) {
		abs, _ := filepath.Abs(db.path)
		return fmt.Errorf("sqlite %s (DATABASE_URL=sqlite:%s): %w (it holds %s). SQLite serves one instance: stop the other one, "+
			"or point every instance at one PostgreSQL database (DATABASE_URL=postgres://…) to run several", abs, db.path, ErrLocked, lockPath)
	}
	if err != nil {
		return fmt.Errorf("sqlite instance lock: %w", err)
	}
	db.lock = f
	return nil
}

func (db *DB) releaseLock() {
	if db.lock != nil {
		db.lock.Close()
	}
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

// Close stops the writer (publishes still waiting are refused), closes the
// prepared statements and the database, and releases the instance lock.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.w.close()
		db.stmtMu.Lock()
		for _, st := range db.stmts {
			st.Close()
		}
		clear(db.stmts)
		db.stmtMu.Unlock()
		db.closeErr = db.x.Close()
		db.releaseLock()
	})
	return db.closeErr
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

// Ping checks that the store is usable for real: a listener is registered,
// the path still names the database file this store has open (a file
// removed or replaced underneath leaves the open one working while every
// new connection, and the next start, sees another), a read of the
// directory answers, and a write commits through the writer (a probe that
// joins the next batch and rewrites the header's user_version, which Herald
// does not otherwise use, so it costs one page in a batch and one sync at
// most).
func (db *DB) Ping(ctx context.Context) error {
	if db.sink.Load() == nil {
		return fmt.Errorf("ping sqlite: %w: %w", store.ErrUnavailable, errNoListener)
	}
	if err := db.sameFile(); err != nil {
		return fmt.Errorf("ping sqlite: %w: %w", store.ErrUnavailable, err)
	}
	var n int
	if err := db.x.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM employees LIMIT 1)`).Scan(&n); err != nil {
		return fmt.Errorf("ping sqlite: read: %w: %w", store.ErrUnavailable, err)
	}
	r := newRequest(kindProbe, store.Message{}, nil)
	if err := db.submit(ctx, r); err != nil {
		return fmt.Errorf("ping sqlite: write: %w: %w", store.ErrUnavailable, err)
	}
	if r.err != nil {
		return fmt.Errorf("ping sqlite: write: %w", r.err)
	}
	return nil
}

// sameFile reports an error unless db.path still names the file Open opened.
func (db *DB) sameFile() error {
	fi, err := os.Stat(db.path)
	if err == nil && !os.SameFile(fi, db.file) {
		err = errors.New("another file has taken its place")
	}
	if err != nil {
		return fmt.Errorf("database file %s is gone (%w): restart Herald to use the file now at that path", db.path, err)
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

// defaultCheckpointEvery is how often the listener copies the WAL back into
// the database, and defaultRestartEvery how often it completes the copy so
// that the WAL restarts (see checkpoint).
const (
	defaultCheckpointEvery = time.Second
	defaultRestartEvery    = 2 * time.Second
)

// checkpoints copies the WAL back into the database in the background until
// ctx ends. SQLite's automatic checkpoint runs inside the commit that
// crosses 1,000 WAL pages, so every publish queued behind that commit waited
// for it: it made the tail of publish-to-delivery latency. The DSN turns
// the automatic one off. Without a listener (the CLI tools) SQLite
// checkpoints when the last connection closes.
func (db *DB) checkpoints(ctx context.Context) {
	t := time.NewTicker(db.checkpointEvery)
	defer t.Stop()
	// Ticks are counted rather than timed: a tick that came a hair early
	// must not put a restart off by a whole interval.
	restartTicks := max(1, int((db.restartEvery+db.checkpointEvery/2)/db.checkpointEvery))
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			db.checkpoint(ctx, tick%restartTicks == 0)
		}
	}
}

// checkpoint copies the WAL into the database; with restart it completes
// the copy, so that the next write starts the WAL again from its
// beginning, overwriting it in place.
//
// SQLite restarts the WAL only at a write that begins while every frame has
// been copied. A PASSIVE checkpoint beside back-to-back writes never gets
// there: the writes append frames while it copies. The WAL then grew until
// the writer truncated it at walLimit (boundWALLocked), which at 1,000
// publishes/s was every ~2 s, holding every publish for 30–40 ms (the copy,
// two syncs, and freeing and then reallocating the file's blocks).
//
// So the copy runs in two passes. The first, every tick, beside the
// writes, copies nearly everything. The second, every restartEvery, runs
// under writeMu, between two of the writer's batches, and copies what the
// writes appended meanwhile: the copy is then complete, and the next batch
// restarts the WAL. The second pass holds writes for its sync of the
// database file: 3–5 ms on a small database, 8–25 ms on one of a million
// notifications (measured on this project's test machine), which is why it
// runs every other tick rather than every tick: a stall every second put
// more than 1% of publishes behind it, and so into the p99. The WAL then
// holds up to restartEvery of writes (about 80 MB at 1,000 publishes/s),
// within walLimit up to about 1,700 publishes/s (inferred from that rate).
// Neither pass waits for readers or writers (PASSIVE); a reader still on an
// old snapshot can keep the copy from completing, and the WAL then restarts
// at a later pass (boundWALLocked still bounds it). Errors are not fatal:
// the next tick tries again.
func (db *DB) checkpoint(ctx context.Context, restart bool) {
	_, _ = db.x.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	if !restart {
		return
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	_, _ = db.x.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
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
