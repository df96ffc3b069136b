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
// and the client's leaving noticed there.
type epollHolder struct {
	epfd, wakefd int
	mu           sync.Mutex
	gone         map[int]func()
	stopped      chan struct{}
}

func newEpollHolder() (*epollHolder, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	h := &epollHolder{epfd: epfd, wakefd: wakefd, gone: map[int]func(){}, stopped: make(chan struct{})}
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
		return nil, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(orig uintptr) { fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	h.mu.Lock()
	h.gone[fd] = gone
	h.mu.Unlock()
	if err := unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}); err != nil {
		h.mu.Lock()
		delete(h.gone, fd)
		h.mu.Unlock()
		unix.Close(fd)
		return nil, err
	}
	return fdWriter(fd), nil
}

// fdWriter writes without blocking; a floor drops what a full socket
// cannot take (at the bench's rates a loopback socket takes it all).
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) {
	n, err := unix.Write(int(w), b)
	return max(n, 0), err
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
			for { // edge-triggered: read until the socket is empty or closed
				m, err := unix.Read(fd, buf[:])
				if m > 0 {
					continue
				}
				if m == 0 || !errors.Is(err, unix.EAGAIN) {
					h.mu.Lock()
					gone := h.gone[fd]
					delete(h.gone, fd)
					h.mu.Unlock()
					if gone != nil {
						gone() // no write reaches the socket after this
					}
					unix.Close(fd)
				}
				break
			}
		}
	}
}

func (h *epollHolder) stop() {
	_, _ = unix.Write(h.wakefd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-h.stopped
	h.mu.Lock()
	for fd := range h.gone {
		unix.Close(fd)
	}
	h.gone = nil
	h.mu.Unlock()
	unix.Close(h.epfd)
	unix.Close(h.wakefd)
}
