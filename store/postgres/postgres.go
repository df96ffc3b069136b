// Package postgres is Herald's production store: PostgreSQL through sqlx and
// lib/pq, shared by any number of Herald instances.
//
// Sequence numbers. A publish bumps employees.last_seq of every recipient
// inside its transaction, after locking those rows in id order, so
// concurrent publishes to overlapping recipients queue behind each other
// instead of deadlocking. The row locks are held to commit: if an
// employee's seq N+1 is committed, so is N, on every instance.
//
// Fan-out. The publishing transaction calls pg_notify, so only committed
// notifications travel, in commit order. A payload carries references (the
// notification id, and the recipients with their seqs when there are few),
// never the content, so it stays far below PostgreSQL's 8,000-byte limit
// whatever the fan-out. Every instance's Listen drains the notifications in
// batches, reads what its own streams need (one query per batch), and hands
// it to the sink from one goroutine, in NOTIFY order. See listen.go.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/corp/herald/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*DB)(nil)

// Defaults of the options.
const (
	// DefaultMaxConns bounds the connection pool of one instance. A publish
	// holds a connection for one round trip (a few with an Idempotency-Key),
	// so a small pool carries thousands of publishes per second; PostgreSQL's
	// max_connections (100 by default) is shared by every instance. The
	// listener holds one more connection of its own.
	DefaultMaxConns = 16
	// DefaultPingInterval is how often the listener's connection is pinged,
	// so a half-open connection (a peer that vanished without a FIN) is
	// noticed and replaced.
	DefaultPingInterval = 10 * time.Second
	// DefaultPingTimeout is how long a ping may take before the listener's
	// connection is taken for dead and closed.
	DefaultPingTimeout = 5 * time.Second
)

// Option configures Open.
type Option func(*options)

type options struct {
	log          *slog.Logger
	maxConns     int
	pingInterval time.Duration
	pingTimeout  time.Duration
	callTimeout  time.Duration
	retryStart   bool
}

// WithCallTimeout bounds every store call (see bound.go; default
// DefaultCallTimeout).
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.callTimeout = d
		}
	}
}

// WithRetryStart makes Open succeed while PostgreSQL cannot be reached: the
// store then answers every call with store.ErrUnavailable (and Ping fails)
// while it retries connecting and migrating in the background, with
// backoff from 1 s to 30 s, until it works or Close. Errors that retrying
// cannot fix (a wrong password, a missing database) still fail Open.
func WithRetryStart() Option {
	return func(o *options) { o.retryStart = true }
}

// WithLogger sets the logger of the listener and housekeeping (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithMaxConns sets the size of the connection pool (default DefaultMaxConns).
func WithMaxConns(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxConns = n
		}
	}
}

// WithListenerPing sets how often the listener's connection is pinged and how
// long a ping may take before the connection is replaced (defaults
// DefaultPingInterval, DefaultPingTimeout).
func WithListenerPing(interval, timeout time.Duration) Option {
	return func(o *options) {
		if interval > 0 {
			o.pingInterval = interval
		}
		if timeout > 0 {
			o.pingTimeout = timeout
		}
	}
}

// DB is the PostgreSQL store.
type DB struct {
	x    *sqlx.DB
	dsn  string // for the listener's own connection
	opts options
	log  *slog.Logger

	batcher   *batcher
	recent    *recentNotes // what this instance just published, for its listener
	listening atomic.Bool  // a Listen is running
	listener  listenerState
	migrated  atomic.Bool // the schema is up to date: calls may connect
	stmts     preparedStmts

	// life ends the background start (WithRetryStart) at Close.
	life     context.Context
	stopLife context.CancelFunc
	starting sync.WaitGroup
}

// Open connects to the database at rawURL (postgres://… or postgresql://…)
// and applies the embedded migrations; several instances starting at once
// take turns (a session advisory lock). Local URLs need sslmode=disable.
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	o := options{
		log:          slog.New(slog.DiscardHandler),
		maxConns:     DefaultMaxConns,
		pingInterval: DefaultPingInterval,
		pingTimeout:  DefaultPingTimeout,
		callTimeout:  DefaultCallTimeout,
	}
	for _, f := range opts {
		f(&o)
	}
	dsn, err := connString(rawURL)
	if err != nil {
		return nil, err
	}
	pc, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", redact(rawURL), err)
	}
	pc.Dialer(newDialer())
	db := &DB{dsn: dsn, opts: o, log: o.log}
	db.life, db.stopLife = context.WithCancel(context.Background())
	db.x = sqlx.NewDb(sql.OpenDB(&connector{pq: pc, timeout: o.callTimeout, ready: db.migrated.Load}), "postgres")
	db.x.SetMaxOpenConns(o.maxConns)
	db.x.SetMaxIdleConns(o.maxConns)
	db.x.SetConnMaxIdleTime(5 * time.Minute)
	err = db.Migrate(ctx)
	switch {
	case err == nil:
	case o.retryStart && ctx.Err() == nil && errors.Is(err, store.ErrUnavailable):
		db.log.Warn("PostgreSQL cannot be reached; serving 503 and retrying in the background", "err", err)
		db.starting.Add(1)
		go db.retryStart()
	default:
		db.stopLife()
		db.x.Close()
		return nil, err
	}
	db.recent = newRecentNotes()
	db.batcher = newBatcher(db)
	return db, nil
}

// retryStart migrates (which connects) until it works or Close, backing
// off from 1 s to 30 s.
func (db *DB) retryStart() {
	defer db.starting.Done()
	delay := time.Second
	for attempt := 2; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-db.life.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := db.Migrate(db.life)
		if err == nil {
			db.log.Info("PostgreSQL reached; schema up to date", "attempts", attempt)
			return
		}
		if db.life.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if !errors.Is(err, store.ErrUnavailable) {
			level = slog.LevelError // retrying will not help; keep saying so
		}
		delay = min(delay*2, 30*time.Second)
		db.log.Log(db.life, level, "PostgreSQL still not usable; retrying", "attempt", attempt, "retry_in", delay, "err", err)
	}
}

// connString adds the connection parameters Herald relies on unless the URL
// sets them: binary_parameters=yes sends a query and its arguments in one
// round trip (lib/pq otherwise prepares first, which costs a second one),
// connect_timeout=5 keeps a dial to an unreachable server from hanging, and
// jit=off (a server setting lib/pq passes on) keeps PostgreSQL from
// JIT-compiling Herald's statements: they are short, and the publish
// statement's estimated cost grows with the directory through branches that
// do not run, so past ~40,000 employees every publish paid ~45 ms of
// compilation for under 1 ms of work.
func connString(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("postgres: %s is not a postgres:// URL", redact(rawURL))
	}
	q := u.Query()
	for k, v := range map[string]string{"binary_parameters": "yes", "connect_timeout": "5", "jit": "off"} {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redact hides a URL's password for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// Migrate applies the embedded migrations that are not applied yet. A
// session-level advisory lock keeps instances that start together from
// migrating at once.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.x.DB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres migrations: %w", err)
	}
	// Migrations may take long and run before the store is open for calls.
	if _, err := p.Up(unbounded(ctx)); err != nil {
		return wrap(ctx, "postgres migrate", err)
	}
	db.migrated.Store(true)
	return nil
}

// Close finishes the publishes in flight and closes the connection pool.
// Stop Listen first (cancel its context).
func (db *DB) Close() error {
	db.stopLife()
	db.starting.Wait()
	db.batcher.close()
	db.closeStmts()
	return db.x.Close()
}

// Ping checks that the database answers and that Listen is running with
// its LISTEN in place: an instance that does not hear the other instances'
// publishes would leave its streams behind, so it is not ready until then,
// nor while the listener reconnects.
func (db *DB) Ping(ctx context.Context) error {
	if !db.migrated.Load() {
		return fmt.Errorf("ping postgres: %w", errNotMigrated)
	}
	var one int
	if err := db.x.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return wrap(ctx, "ping postgres", err)
	}
	if !db.listener.up() {
		return fmt.Errorf("ping postgres: %w: the listener is not connected", store.ErrUnavailable)
	}
	return nil
}

// wrap adds context to err and sorts it: domain errors and the caller's
// cancellation stay as they are; failures to reach or use the database,
// and calls that ran out of time, become store.ErrUnavailable (retry
// later); errors in what Herald sent (bad SQL, bad data) stay plain, so
// they surface as internal errors.
func wrap(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrIdempotencyMismatch), errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: %w: %w", op, ctx.Err(), err)
	case ctx.Err() != nil, unavailable(err):
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// write runs one write statement (fn) on a connection of its own, so that
// failing to get a connection (nothing was sent) is told apart from the
// statement failing on its way (see inFlight). fn returns the database's
// error as it is.
func (db *DB) write(ctx context.Context, fn func(q querier) error) error {
	conn, err := db.x.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return inFlight(fn(conn))
}

// inFlight marks the error of a write whose statement (or commit) may have
// reached the server: unless the server itself answered with an error (then
// nothing was committed), nobody can know whether it was.
func inFlight(err error) error {
	if err == nil || pq.As(err) != nil || errors.Is(err, store.ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("%w: %w: %w", store.ErrUnavailable, store.ErrOutcomeUnknown, err)
}

// unavailable reports whether err means the database could not do the work
// now but may later: connection failures (network errors, a closed
// connection: anything that is no server error) and server errors of the
// classes that describe the server's state rather than the request.
func unavailable(err error) bool {
	pqErr := pq.As(err)
	if pqErr == nil {
		return !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, sql.ErrTxDone)
	}
	switch pqErr.Code.Class() {
	case "08", // connection exception
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources: too many connections, disk full
		"55", // object not in prerequisite state: lock not available
		"57", // operator intervention: shutdown, crash recovery
		"58", // system error
		"XX": // internal error
		return true
	}
	return false
}

// isUniqueViolation reports whether err is a unique constraint violation.
func isUniqueViolation(err error) bool {
	return pq.As(err, "23505") != nil
}

// querier is what both *sqlx.DB and *sqlx.Tx offer.
type querier interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var (
	_ querier = (*sqlx.Tx)(nil)
	_ querier = (*sqlx.DB)(nil)
	_ querier = (*sqlx.Conn)(nil)
)

// noRows turns sql.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// utc returns t in UTC, as the store's times are.
func utc(t time.Time) time.Time { return t.UTC() }

// now is the store's clock: UTC, to the millisecond like the SQLite store.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// nullable turns "" into SQL NULL (for the unique email and username).
func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
