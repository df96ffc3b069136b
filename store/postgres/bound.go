package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// Bounded calls.
//
// lib/pq honours a context by sending PostgreSQL a cancel request and then
// waiting for the server to answer the query, so against a server that
// accepts TCP but never answers (a stalled host, a half-open network) a
// context deadline never fires: a publish once took 61 s to answer. Here
// every connection of the pool is a boundConn, which knows the net.Conn
// its dialer opened: when the context of a call ends, or callTimeout after
// the connection was taken from the pool, the connection's deadline is
// moved into the past. The blocked read or write then fails at once, the
// call returns an error, and database/sql discards the connection.
//
// The bound is per checkout: a transaction's statements share it, and a
// query's rows are covered until they are closed. Migrations are exempt
// (see unbounded): a long migration must not be cut off.

// DefaultCallTimeout bounds one store call (one checkout of a connection:
// a statement, or a transaction with all of its statements), whatever its
// context says.
const DefaultCallTimeout = 10 * time.Second

// past is the deadline that makes a connection's I/O fail at once.
var past = time.Unix(1, 0)

// unboundedKey marks a context whose calls are not bounded by callTimeout
// and may connect before the migrations ran (Migrate's own).
type unboundedKey struct{}

func unbounded(ctx context.Context) context.Context {
	return context.WithValue(ctx, unboundedKey{}, true)
}

func isUnbounded(ctx context.Context) bool { return ctx.Value(unboundedKey{}) != nil }

// errNotMigrated answers calls made before the first migration succeeded
// (Herald serves while PostgreSQL is unreachable at start).
var errNotMigrated = fmt.Errorf("%w: not connected to PostgreSQL yet (retrying)", store.ErrUnavailable)

// connector opens the pool's connections through pq and wraps each in a
// boundConn.
type connector struct {
	pq      *pq.Connector
	timeout time.Duration
	// ready reports whether the schema is migrated; until then only
	// unbounded (migration) contexts may connect.
	ready func() bool
}

// dialSlotKey carries, in the context of pq's Connect, where the dialer
// leaves the net.Conn it opened.
type dialSlotKey struct{}

// dialSlot receives the connection the dialer opened for one Connect, and
// bounds its handshake by the Connect's context.
type dialSlot struct {
	ctx    context.Context
	mu     sync.Mutex // guards conn and stop
	conn   net.Conn
	stop   func() bool
	killed atomic.Bool
}

// opened records c (the last one wins: with several hosts, pq closes the
// ones it does not keep) and cuts its handshake short if ctx ends first.
func (s *dialSlot) opened(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	s.conn = c
	s.stop = context.AfterFunc(s.ctx, func() {
		s.killed.Store(true)
		_ = c.SetDeadline(past)
	})
}

func (s *dialSlot) release() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	return s.conn
}

// Connect implements driver.Connector.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if !isUnbounded(ctx) {
		if !c.ready() {
			return nil, errNotMigrated
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	slot := &dialSlot{ctx: ctx}
	dc, err := c.pq.Connect(context.WithValue(ctx, dialSlotKey{}, slot))
	nc := slot.release()
	if err != nil {
		return nil, err
	}
	if nc == nil {
		// Not dialed by our dialer: nothing to bound (cannot happen).
		return dc, nil
	}
	b := &boundConn{Conn: dc, nc: nc, timeout: c.timeout}
	b.killed.Store(slot.killed.Load())
	return b, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return c.pq.Driver() }

// boundConn is a pq connection whose calls end when their context does, or
// after timeout (see above). database/sql uses a connection from one
// goroutine at a time; mu guards against the timers' goroutines.
type boundConn struct {
	driver.Conn
	nc      net.Conn
	timeout time.Duration
	killed  atomic.Bool

	mu    sync.Mutex // guards gen, stops and timer
	gen   uint64     // bumped when the connection goes back to the pool
	stops []func() bool
	timer *time.Timer
}

// The interfaces database/sql looks for, all passed on to pq's connection.
var (
	_ driver.ConnBeginTx        = (*boundConn)(nil)
	_ driver.ConnPrepareContext = (*boundConn)(nil)
	_ driver.QueryerContext     = (*boundConn)(nil)
	_ driver.ExecerContext      = (*boundConn)(nil)
	_ driver.Pinger             = (*boundConn)(nil)
	_ driver.SessionResetter    = (*boundConn)(nil)
	_ driver.Validator          = (*boundConn)(nil)
	_ driver.NamedValueChecker  = (*boundConn)(nil)
)

// watch bounds the current checkout by ctx and, unless ctx is unbounded,
// by timeout from the first call on.
func (c *boundConn) watch(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.gen
	c.stops = append(c.stops, context.AfterFunc(ctx, func() { c.kill(gen) }))
	if c.timer == nil && c.timeout > 0 && !isUnbounded(ctx) {
		c.timer = time.AfterFunc(c.timeout, func() { c.kill(gen) })
	}
}

// kill makes the connection's I/O fail from now on, unless it went back to
// the pool since the watch that calls it began.
func (c *boundConn) kill(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.killed.Store(true)
	_ = c.nc.SetDeadline(past)
}

// release ends the watches of a checkout.
func (c *boundConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, stop := range c.stops {
		stop()
	}
	c.stops = c.stops[:0]
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// BeginTx implements driver.ConnBeginTx: the watch lasts until the
// transaction ends and the connection goes back to the pool.
func (c *boundConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.watch(ctx)
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// PrepareContext implements driver.ConnPrepareContext.
func (c *boundConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.watch(ctx)
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &boundStmt{Stmt: st, c: c}, nil
}

// QueryContext implements driver.QueryerContext; the rows are covered
// until they are closed (the connection goes back to the pool then).
func (c *boundConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.watch(ctx)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

// ExecContext implements driver.ExecerContext.
func (c *boundConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.watch(ctx)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

// Ping implements driver.Pinger.
func (c *boundConn) Ping(ctx context.Context) error {
	c.watch(ctx)
	return c.Conn.(driver.Pinger).Ping(ctx)
}

// ResetSession implements driver.SessionResetter (a pooled connection is
// taken again). A connection the server closed meanwhile is reported bad
// here, before anything is sent on it: database/sql then takes another.
func (c *boundConn) ResetSession(ctx context.Context) error {
	c.release()
	if c.killed.Load() || closedByPeer(c.nc) {
		return driver.ErrBadConn
	}
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

// IsValid implements driver.Validator; database/sql calls it when the
// connection goes back to the pool, which ends the checkout's watches.
func (c *boundConn) IsValid() bool {
	c.release()
	return !c.killed.Load() && c.Conn.(driver.Validator).IsValid()
}

// CheckNamedValue implements driver.NamedValueChecker (pq converts slices
// and binary parameters there).
func (c *boundConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

// Close implements driver.Conn.
func (c *boundConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// boundStmt is a prepared statement of a boundConn: its calls are watched
// like the connection's.
type boundStmt struct {
	driver.Stmt
	c *boundConn
}

func (s *boundStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.watch(ctx)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (s *boundStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.watch(ctx)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

// isTimeout reports whether err is a connection's I/O cut short by a
// deadline (a bound of this file, or connect_timeout).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
