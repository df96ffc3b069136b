package sse

import (
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// longAgo is a deadline in the past: setting it wakes a blocked read, or
// fails a write, at once.
var longAgo = time.Unix(1, 0)

// finalTimeout bounds how long closing a stream waits for its client to
// take the ending (the close frame, the last event) when its socket is
// full: a stalled client is closed a moment after it was told why, or
// without being told. One second; tests change it through an atomic, as a
// stream of an earlier test may still be closing.
var finalTimeoutNanos atomic.Int64

func init() { finalTimeoutNanos.Store(int64(time.Second)) }

func finalTimeout() time.Duration { return time.Duration(finalTimeoutNanos.Load()) }

// netConn serves a taken-over connection that the poller cannot hold (TLS,
// or streams kept on goroutines) with one goroutine of its own, blocked in
// a read: the read notices the client leaving and receives what it sends
// (WebSocket frames), and the stream's work wakes it by moving the read
// deadline into the past. The work itself runs on a short-lived goroutine,
// so the long-lived one keeps a small stack.
type netConn struct {
	nc      net.Conn
	s       *stream
	woke    atomic.Bool // set by schedule before it moves the read deadline
	aborted atomic.Bool
	// rest is the unwritten end of a frame that a failed write left under
	// way; close completes it before the ending. Only the worker uses it.
	rest []byte
}

func (c *netConn) tryWrite([]byte) (bool, *End) { return false, nil }

func (c *netConn) write(bufs [][]byte) *End {
	if err := armWriteDeadline(&c.aborted, c.nc.SetWriteDeadline); err != nil {
		return EndError
	}
	// WriteTo consumes the slice it writes from: a copy keeps bufs intact
	// for frameRest.
	nb := append(net.Buffers(nil), bufs...)
	if n, err := nb.WriteTo(c.nc); err != nil {
		c.rest = frameRest(bufs, n)
		return writeEnd(err)
	}
	return nil
}

// frameRest returns the unwritten end of the buffer of bufs inside which
// the first n bytes end; nil when they end between two buffers.
func frameRest(bufs [][]byte, n int64) []byte {
	for _, b := range bufs {
		if n < int64(len(b)) {
			if n <= 0 {
				return nil
			}
			return b[n:]
		}
		n -= int64(len(b))
	}
	return nil
}

func (c *netConn) schedule() {
	c.woke.Store(true)
	_ = c.nc.SetReadDeadline(longAgo)
}

func (c *netConn) abort() {
	c.aborted.Store(true)
	_ = c.nc.SetWriteDeadline(longAgo)
}

// close writes final after the rest of a frame left under way (a frame not
// begun is dropped: the client resumes from its position), waiting at most
// finalTimeout, and closes the connection. (On TLS a write that failed
// leaves the connection unusable: nothing more reaches the client.)
func (c *netConn) close(final []byte) {
	if len(final) > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(finalTimeout()))
		nb := net.Buffers{c.rest, final}
		_, _ = nb.WriteTo(c.nc)
	}
	_ = c.nc.Close()
}

// serve runs until the stream has finished: it reads what the client sends
// and runs the stream's work when woken.
func (c *netConn) serve(buffered []byte) {
	if len(buffered) > 0 {
		c.input(buffered)
	}
	size := 1 // an SSE client sends nothing: one byte notices data or EOF
	if c.s.ws != nil {
		size = 512
	}
	buf := make([]byte, size)
	done := make(chan bool, 1)
	work := func() { done <- c.s.work() }
	for {
		_ = c.nc.SetReadDeadline(time.Time{})
		// A wake-up between the deadline above and the read is not lost:
		// schedule sets woke before it moves the deadline.
		if !c.woke.Swap(false) {
			n, err := c.nc.Read(buf)
			if n > 0 {
				c.input(buf[:n])
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				c.s.stop(EndClient)
			}
			if !c.woke.Swap(false) {
				continue
			}
		}
		go work()
		if <-done {
			return
		}
	}
}

func (c *netConn) input(b []byte) {
	if c.s.ws == nil {
		c.s.stop(EndClientData)
		return
	}
	replies, end := c.s.ws.feed(c.s, b)
	// A reply is not written once the stream was aborted: its deadline
	// would undo abort's, and the worker's blocked write would wait on.
	if len(replies) > 0 && armWriteDeadline(&c.aborted, c.nc.SetWriteDeadline) == nil {
		_, _ = c.nc.Write(replies)
	}
	if end != nil {
		c.s.stop(end)
	}
}

// httpConn writes a stream through net/http (HTTP/2, HTTP/1.0, or streams
// kept on goroutines): the request's goroutine waits for work and notices
// the client leaving through the request's context.
type httpConn struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	wake    chan struct{} // capacity 1: a pending wake-up
	aborted atomic.Bool
	writing atomic.Bool // a write is in progress (see abort)
}

func newHTTPConn(w http.ResponseWriter) *httpConn {
	return &httpConn{w: w, rc: http.NewResponseController(w), wake: make(chan struct{}, 1)}
}

func (c *httpConn) tryWrite([]byte) (bool, *End) { return false, nil }

func (c *httpConn) write(bufs [][]byte) *End {
	c.writing.Store(true)
	defer c.writing.Store(false)
	err := armWriteDeadline(&c.aborted, c.rc.SetWriteDeadline)
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return EndError
	}
	for _, b := range bufs {
		if c.aborted.Load() {
			return EndError // the write under way completed (see abort); no more
		}
		if _, err := c.w.Write(b); err != nil {
			return writeEnd(err)
		}
	}
	if err := c.rc.Flush(); err != nil {
		return writeEnd(err)
	}
	return nil
}

func (c *httpConn) schedule() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// abort gives a write in progress finalTimeout more, and writes nothing
// after it: a write cut short leaves the response unusable (net/http keeps
// the error; HTTP/2 resets the stream), and the ending (event: closed)
// could no longer be written, so the event under way completes if the
// client reads, and the ending follows it. A client that does not read is
// cut off then. An idle stream's deadline is left alone; a write that
// starts after abort sees aborted and fails by itself (armWriteDeadline).
func (c *httpConn) abort() {
	c.aborted.Store(true)
	if c.writing.Load() {
		_ = c.rc.SetWriteDeadline(time.Now().Add(finalTimeout()))
	}
}

func (c *httpConn) close(final []byte) {
	if len(final) > 0 {
		_ = c.rc.SetWriteDeadline(time.Now().Add(finalTimeout()))
		if _, err := c.w.Write(final); err == nil {
			_ = c.rc.Flush()
		}
	}
}

// serve runs the stream on the request's goroutine until it has finished.
func (c *httpConn) serve(s *stream, clientGone <-chan struct{}) {
	for {
		select {
		case <-clientGone:
			clientGone = nil
			s.stop(EndClient)
			continue
		case <-c.wake:
		}
		if s.work() {
			return
		}
	}
}

// armWriteDeadline sets the next write's deadline through set, unless the
// stream was aborted. The second look at aborted closes the race with
// abort (which moves the deadline of a write in progress): whichever sets
// its deadline last, a write that was to start after an abort does not.
func armWriteDeadline(aborted *atomic.Bool, set func(time.Time) error) error {
	if aborted.Load() {
		return errAborted
	}
	err := set(time.Now().Add(writeTimeout))
	if aborted.Load() {
		return errAborted
	}
	return err
}

var errAborted = errors.New("stream aborted")

// writeEnd maps a failed write to why the stream ended.
func writeEnd(err error) *End {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return EndWriteTimeout
	}
	return EndError
}
