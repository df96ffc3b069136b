package postgres

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Keep-alive settings of every connection to PostgreSQL. A server that
// vanished without closing the connection (a network partition, a host
// that died) is noticed after about idle + count × interval when the
// connection is quiet, and after userTimeout when data waits for an
// acknowledgement (Linux). Without them a publish could hang for many
// minutes instead of answering 503.
const (
	keepAliveIdle     = 10 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	userTimeout       = 20 * time.Second
	// cancelTimeout bounds a cancel request's connection.
	cancelTimeout = 10 * time.Second
)

// dialer opens the TCP connections of the pool and of the listener. For the
// listener it remembers the current connection, so a connection that stops
// answering pings can be closed, which makes pq.Listener reconnect.
type dialer struct {
	d     net.Dialer
	track bool
	// stopped ends dials in progress when the listener stops (nil for the
	// pool's dialer).
	stopped context.Context
	stop    context.CancelFunc

	mu      sync.Mutex // guards current
	current net.Conn
}

func newDialer() *dialer {
	return &dialer{d: net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: func(network, _ string, c syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") {
				return nil // a Unix socket has no TCP options
			}
			return setUserTimeout(c, userTimeout)
		},
	}}
}

// newListenerDialer is a dialer that remembers its latest connection and
// whose dials end when shutdown is called.
func newListenerDialer() *dialer {
	d := newDialer()
	d.track = true
	d.stopped, d.stop = context.WithCancel(context.Background())
	return d
}

// Dial implements pq.Dialer.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialTimeout implements pq.Dialer.
func (d *dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

// DialContext implements pq.DialerContext.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.stopped != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(d.stopped, cancel)()
	}
	c, err := d.d.DialContext(ctx, network, address)
	slot, pooled := ctx.Value(dialSlotKey{}).(*dialSlot)
	switch {
	case err != nil:
	case pooled:
		slot.opened(c) // a pool connection: see bound.go
	case !d.track:
		// Neither the pool's nor the listener's: lib/pq's cancel request,
		// which reads until the server closes. Bound it, so that a server
		// that never answers does not keep its goroutine forever (lib/pq
		// sets connect_timeout as its deadline, unless the URL turns that
		// off).
		_ = c.SetDeadline(time.Now().Add(cancelTimeout))
	}
	if err == nil && d.track {
		d.mu.Lock()
		d.current = c
		d.mu.Unlock()
	}
	return c, err
}

// shutdown ends the dials in progress and closes the current connection,
// so a listener that is being closed does not wait for a slow server.
func (d *dialer) shutdown() {
	if d.stop != nil {
		d.stop()
	}
	d.closeCurrent()
}

// closeCurrent closes the latest connection, if the dialer tracks one.
func (d *dialer) closeCurrent() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.current != nil {
		d.current.Close()
	}
}
