package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// epollHolder holds taken-over streams the way Herald's engine does (sse,
// poller_linux.go), cut to what the floor needs: the socket duplicated out
// of Go's network poller into one edge-triggered epoll set that one
// goroutine waits on, writes made straight to the socket without blocking,
// what the socket cannot take kept in a buffer that exists only while it
// holds bytes and written on EPOLLOUT, and the client's leaving noticed
// there.
type epollHolder struct {
	epfd, wakefd int
	mu           sync.Mutex
	conns        map[int]*heldConn // nil once stopped
	stopped      chan struct{}
}

// heldConn is one taken-over socket.
type heldConn struct {
	mu      sync.Mutex
	fd      int // -1 once closed
	pending []byte
	gone    func()
}

// newWakeableEpoll is an epoll set with an eventfd in it: a write to the
// eventfd (wake) ends the wait of the loop that waits on the set.
func newWakeableEpoll() (epfd, wakefd int, err error) {
	if epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return -1, -1, fmt.Errorf("epoll_create1: %w", err)
	}
	if wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(epfd)
		return -1, -1, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return -1, -1, fmt.Errorf("epoll_ctl: %w", err)
	}
	return epfd, wakefd, nil
}

func wake(wakefd int) { _, _ = unix.Write(wakefd, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }

func newEpollHolder() (*epollHolder, error) {
	epfd, wakefd, err := newWakeableEpoll()
	if err != nil {
		return nil, err
	}
	h := &epollHolder{epfd: epfd, wakefd: wakefd, conns: map[int]*heldConn{}, stopped: make(chan struct{})}
	go h.loop()
	return h, nil
}

func (h *epollHolder) hold(nc net.Conn, gone func()) (io.Writer, error) {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("cannot hold a %T", nc)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(orig uintptr) { fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("hold: dup: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hold: %w", err)
	}
	c := &heldConn{fd: fd, gone: gone}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns == nil {
		unix.Close(fd)
		return nil, errors.New("hold: the holder has stopped")
	}
	h.conns[fd] = c
	if err := unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT | unix.EPOLLET, Fd: int32(fd)}); err != nil {
		delete(h.conns, fd)
		unix.Close(fd)
		return nil, fmt.Errorf("hold: epoll_ctl: %w", err)
	}
	return c, nil
}

// Write sends b without blocking; what the socket cannot take waits, after
// anything already waiting, for EPOLLOUT. A reader that lets more than
// maxPending pile up gets nothing more (the floor has no queue to bound).
func (c *heldConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, net.ErrClosed
	}
	if len(c.pending) > 0 {
		if len(c.pending)+len(b) > maxPending {
			return 0, errors.New("the reader is too slow")
		}
		c.pending = append(c.pending, b...)
		return len(b), nil
	}
	n, err := unix.Write(c.fd, b)
	if n == len(b) {
		return n, nil
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		return max(n, 0), err
	}
	c.pending = append([]byte(nil), b[max(n, 0):]...)
	return len(b), nil
}

func (c *heldConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 || len(c.pending) == 0 {
		return
	}
	n, _ := unix.Write(c.fd, c.pending)
	if c.pending = c.pending[max(n, 0):]; len(c.pending) == 0 {
		c.pending = nil
	}
}

// end calls gone (no write reaches the socket after it) and closes it.
func (c *heldConn) end() {
	c.gone()
	c.mu.Lock()
	fd := c.fd
	c.fd, c.pending = -1, nil
	c.mu.Unlock()
	if fd >= 0 {
		unix.Close(fd)
	}
}

func (h *epollHolder) loop() {
	defer close(h.stopped)
	events := make([]unix.EpollEvent, 256)
	var buf [512]byte
	for {
		n, err := unix.EpollWait(h.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == h.wakefd {
				return
			}
			h.mu.Lock()
			c := h.conns[fd]
			h.mu.Unlock()
			if c == nil {
				continue
			}
			if events[i].Events&unix.EPOLLOUT != 0 {
				c.flush()
			}
			for { // edge-triggered: read until the socket is empty or closed
				m, err := unix.Read(fd, buf[:])
				if m > 0 {
					continue
				}
				if m == 0 || !errors.Is(err, unix.EAGAIN) {
					h.mu.Lock()
					delete(h.conns, fd)
					h.mu.Unlock()
					c.end()
				}
				break
			}
		}
	}
}

// stop ends the loop, then every stream it still holds.
func (h *epollHolder) stop() {
	wake(h.wakefd)
	<-h.stopped
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		c.end()
	}
	unix.Close(h.epfd)
	unix.Close(h.wakefd)
}
