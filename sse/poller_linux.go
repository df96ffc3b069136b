package sse

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The poller holds idle connections without a goroutine. A stream's socket
// is taken over from net/http (hijacked, duplicated, the net.Conn closed so
// Go's own poller forgets it) and registered, edge-triggered, in one epoll
// set that a single goroutine waits on. It learns there when a client
// leaves, sends a frame (WebSocket), or when a socket that was full can take
// the rest of a write. Writes are non-blocking: a delivery writes the
// event's shared bytes straight to the socket; whatever the socket cannot
// take waits in the connection's pending slice (one frame at most: later
// events wait in the stream's bounded queue).

// epollEvents is what every connection is registered for, edge-triggered:
// input, the peer closing its side, and room to write (which only fires
// after a write found the socket full).
const epollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT | unix.EPOLLET

type poller struct {
	hub    *Hub
	epfd   int
	wakefd int // an eventfd that stop writes to end the loop

	mu    sync.RWMutex // guards conns
	conns []*fdConn    // by file descriptor

	buf     [16 << 10]byte // the loop's read buffer, shared by every connection
	stopped chan struct{}
}

func startPoller(h *Hub) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	p := &poller{hub: h, epfd: epfd, wakefd: wakefd, stopped: make(chan struct{})}
	go p.loop()
	return p, nil
}

func (p *poller) stop() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
	<-p.stopped
	unix.Close(p.epfd)
	unix.Close(p.wakefd)
}

func (p *poller) loop() {
	defer close(p.stopped)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.hub.log.Warn("epoll_wait failed; the poller stops", "err", err)
			return
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == p.wakefd {
				return
			}
			if c := p.conn(fd); c != nil {
				c.onEvents(events[i].Events)
			}
		}
	}
}

func (p *poller) conn(fd int) *fdConn {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if fd < len(p.conns) {
		return p.conns[fd]
	}
	return nil
}

// takeOver moves a hijacked TCP connection onto the poller for stream s.
// The net.Conn is closed either way; on success the returned fdConn owns a
// duplicate of its socket, non-blocking. Bytes the client sent after its
// request that net/http had already read (buffered) are handed to s first.
func (p *poller) takeOver(nc net.Conn, s *stream, buffered []byte) (*fdConn, error) {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("cannot poll a %T", nc)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A peer that stops acknowledging (unplugged, asleep) is dropped by the
	// kernel once data has waited unacknowledged for a heartbeat (at least
	// 5 s): the heartbeats after it died find it.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(silence(p.hub.heartbeat)/int64(time.Millisecond)))
	c := &fdConn{p: p, s: s, fd: fd}
	// The bytes already read go first, before the connection is published
	// to the poller's goroutine (its lock orders this parsing before the
	// poller's), and the stream is stopped only once it is registered, so
	// that its closing finds it there.
	var end *End
	if len(buffered) > 0 {
		end = c.handleInput(buffered)
	}
	p.mu.Lock()
	if fd >= len(p.conns) {
		grown := make([]*fdConn, max(fd+1, 2*len(p.conns)))
		copy(grown, p.conns)
		p.conns = grown
	}
	p.conns[fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: epollEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.close(nil)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if end != nil {
		s.stop(end)
	}
	return c, nil
}

// fdConn is a stream's socket on the poller.
type fdConn struct {
	p *poller
	s *stream

	mu      sync.Mutex // guards every field below
	fd      int        // -1 once closed
	pending []byte     // what the socket could not take yet; nil when empty
	whole   bool       // pending is a whole frame: none of its bytes went out
	drained chan struct{}
	aborted bool
}

// tryWrite writes b now, keeping what the socket cannot take in pending.
func (c *fdConn) tryWrite(b []byte) (bool, *End) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return false, EndError
	}
	if c.pending != nil {
		return false, nil
	}
	return true, c.writeLocked(b, true)
}

// writeLocked writes b, keeping the rest in pending (b is not copied: it
// must not change, as events' bytes never do). whole says that b is a
// whole frame, none of it written yet.
func (c *fdConn) writeLocked(b []byte, whole bool) *End {
	for len(b) > 0 {
		n, err := unix.Write(c.fd, b)
		if n > 0 {
			b, whole = b[n:], false
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			c.pending, c.whole = b, whole
			return nil
		default:
			return endFor(err)
		}
	}
	return nil
}

// write writes bufs, waiting (bounded by writeTimeout) for the socket to
// take them all. Only the stream's worker calls it.
func (c *fdConn) write(bufs [][]byte) *End {
	deadline := time.Now().Add(writeTimeout)
	for _, b := range bufs {
		if end := c.waitDrained(deadline); end != nil {
			return end
		}
		c.mu.Lock()
		if c.fd < 0 || c.aborted {
			c.mu.Unlock()
			return EndError
		}
		end := c.writeLocked(b, true)
		c.mu.Unlock()
		if end != nil {
			return end
		}
	}
	return c.waitDrained(deadline)
}

// waitDrained waits until nothing is pending. An aborted stream does not
// wait: abort may have come before there was anything to wake.
func (c *fdConn) waitDrained(deadline time.Time) *End {
	c.mu.Lock()
	if c.fd < 0 || c.aborted {
		c.mu.Unlock()
		return EndError
	}
	if c.pending == nil {
		c.mu.Unlock()
		return nil
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	ch := c.drained
	c.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return EndWriteTimeout
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || c.aborted {
		return EndError
	}
	if c.pending != nil {
		return EndWriteTimeout
	}
	return nil
}

// signalDrainedLocked wakes a waiting writer.
func (c *fdConn) signalDrainedLocked() {
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

func (c *fdConn) schedule() { c.p.hub.goWork(func() { c.s.work() }) }

func (c *fdConn) abort() {
	c.mu.Lock()
	c.aborted = true
	c.signalDrainedLocked()
	c.mu.Unlock()
}

// close writes final (see writeFinalLocked) and closes the socket; the
// kernel still sends what it holds.
func (c *fdConn) close(final []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return
	}
	if len(final) > 0 {
		c.writeFinalLocked(final)
		if c.fd < 0 {
			return
		}
	}
	fd := c.fd
	c.p.mu.Lock()
	if fd < len(c.p.conns) && c.p.conns[fd] == c {
		c.p.conns[fd] = nil
	}
	c.p.mu.Unlock()
	_ = unix.EpollCtl(c.p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
	c.fd, c.pending = -1, nil
	c.signalDrainedLocked()
}

// writeFinalLocked writes final, the stream's ending, even to a client
// whose socket is full (a slow consumer, a stream ended while a write
// waited): a pending frame none of whose bytes went out is dropped (the
// client resumes from its position), one under way is completed so that
// the client can read what follows, then final goes out as the socket takes
// it, as long as the client reads within finalTimeout. It unlocks c.mu
// while it waits; the poller's flush writes meanwhile.
func (c *fdConn) writeFinalLocked(final []byte) {
	if c.pending != nil && c.whole {
		c.pending = nil
	}
	if c.pending == nil {
		if end := c.writeLocked(final, true); end != nil || c.pending == nil {
			return
		}
	} else {
		c.pending = append(c.pending[:len(c.pending):len(c.pending)], final...)
	}
	c.whole = false // nothing more is dropped: the rest is the ending
	t := time.NewTimer(finalTimeout())
	defer t.Stop()
	for c.fd >= 0 && c.pending != nil {
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		ch := c.drained
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
		case <-t.C:
			c.mu.Lock()
			return
		}
	}
}

// onEvents handles what epoll reported for the connection, on the
// poller's goroutine.
func (c *fdConn) onEvents(ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		c.flush()
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readAll()
	}
}

// flush writes what is pending now that the socket has room; once it is
// all out, the stream's worker takes over what queued meanwhile.
func (c *fdConn) flush() {
	c.mu.Lock()
	if c.fd < 0 || c.pending == nil {
		c.mu.Unlock()
		return
	}
	b := c.pending
	c.pending = nil
	end := c.writeLocked(b, c.whole)
	drained := c.pending == nil
	if drained {
		c.signalDrainedLocked()
	}
	c.mu.Unlock()
	switch {
	case end != nil:
		c.s.stop(end)
	case drained:
		c.s.resume()
	}
}

// readAll reads what the client sent until the socket is empty, and
// notices the client leaving.
func (c *fdConn) readAll() {
	for {
		// The descriptor is read under the lock: once closed, its number
		// may belong to another connection.
		c.mu.Lock()
		if c.fd < 0 {
			c.mu.Unlock()
			return
		}
		n, err := unix.Read(c.fd, c.p.buf[:])
		c.mu.Unlock()
		switch {
		case n > 0:
			if end := c.handleInput(c.p.buf[:n]); end != nil {
				c.s.stop(end)
				return
			}
		case n == 0 && err == nil:
			c.s.stop(EndClient)
			return
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			return
		default:
			c.s.stop(endFor(err))
			return
		}
	}
}

// handleInput passes what the client sent to the stream's transport.
func (c *fdConn) handleInput(b []byte) *End {
	if c.s.ws == nil {
		return EndClientData // an SSE client has nothing to say
	}
	replies, end := c.s.ws.feed(c.s, b)
	if len(replies) > 0 {
		c.mu.Lock()
		if c.fd >= 0 && c.pending == nil {
			_ = c.writeLocked(replies, true) // a pong, a close echo; dropped when bytes wait
		}
		c.mu.Unlock()
	}
	return end
}

// endFor maps a socket error to why the stream ended.
func endFor(err error) *End {
	switch {
	case errors.Is(err, unix.ETIMEDOUT):
		return EndDeadPeer
	case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ECONNRESET):
		return EndClient
	}
	return EndError
}
