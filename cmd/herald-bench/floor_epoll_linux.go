package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event-loop floor (`herald-bench floor --epoll`) answers the same
// requests as the net/http floor on one OS thread and one epoll set: no
// goroutine per connection, no net/http, no Go network poller. Each
// publish costs it the fewest system calls a server that answers one HTTP
// request per publish can make (the request's read, the answer's write, the
// event's write, and the wait between them), so what it spends per message
// is the floor for any HTTP/1.1 publish path on this machine, net/http or
// not. It parses only what the bench sends (HTTP/1.1 requests with a
// Content-Length) and streams without chunked framing.

// epollFloorConn is one client connection: what it sent that is not yet a
// whole request, what the socket could not take yet, and the employee whose
// stream it is, once it is one.
type epollFloorConn struct {
	fd       int
	in       []byte
	out      []byte // unsent bytes; the connection waits for EPOLLOUT while it holds any
	isStream bool
	stream   int64
}

// maxPending bounds what a connection may hold unsent; a client that lets
// more pile up is dropped, as Herald drops a reader that falls behind.
const maxPending = 256 << 10

type epollFloor struct {
	epfd, lfd, wakefd int
	conns             map[int]*epollFloorConn
	streams           map[int64]*epollFloorConn
	buf               [64 << 10]byte
}

func runEpollFloor(ctx context.Context, addr string, beat time.Duration, stdout io.Writer) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	f := &epollFloor{conns: map[int]*epollFloorConn{}, streams: map[int64]*epollFloorConn{}}
	if f.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	defer unix.Close(f.lfd)
	_ = unix.SetsockoptInt(f.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := unix.Bind(f.lfd, sa); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(f.lfd, 4096); err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	bound, err := unix.Getsockname(f.lfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	b4 := bound.(*unix.SockaddrInet4)
	if f.epfd, f.wakefd, err = newWakeableEpoll(); err != nil {
		return err
	}
	defer unix.Close(f.epfd)
	defer unix.Close(f.wakefd)
	if err := unix.EpollCtl(f.epfd, unix.EPOLL_CTL_ADD, f.lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f.lfd)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // ends the loop when ctx ends
		select {
		case <-ctx.Done():
			wake(f.wakefd)
		case <-stopped:
		}
	}()
	fmt.Fprintf(stdout, "floor: http://%s:%d pid %d (epoll)\n", net.IP(b4.Addr[:]), b4.Port, os.Getpid())
	defer func() {
		for fd := range f.conns {
			unix.Close(fd)
		}
	}()
	const tick = 100 * time.Millisecond
	slices := max(1, int(beat/tick))
	next, k := time.Now().Add(tick), 0
	events := make([]unix.EpollEvent, 256)
	for {
		// Rounded up: rounded down, the last millisecond before each tick
		// would poll without waiting, a spin.
		wait := int((time.Until(next) + time.Millisecond - 1) / time.Millisecond)
		n, err := rawEpollWait(f.epfd, events, max(0, wait))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for i := range n {
			switch fd := int(events[i].Fd); fd {
			case f.wakefd:
				return nil
			case f.lfd:
				f.accept()
			default:
				c := f.conns[fd]
				if c != nil && events[i].Events&unix.EPOLLOUT != 0 {
					f.flush(c)
				}
				if c = f.conns[fd]; c != nil && events[i].Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					f.read(c)
				}
			}
		}
		if now := time.Now(); !now.Before(next) {
			for id, c := range f.streams {
				if int(id%int64(slices)) == k%slices {
					f.write(c, []byte(":\n\n"))
				}
			}
			k++
			next = now.Add(tick)
		}
	}
}

func (f *epollFloor) accept() {
	for {
		fd, _, err := unix.Accept4(f.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left; anything else: the next wake-up retries
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if unix.EpollCtl(f.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}) != nil {
			unix.Close(fd)
			continue
		}
		f.conns[fd] = &epollFloorConn{fd: fd}
	}
}

func (f *epollFloor) close(c *epollFloorConn) {
	delete(f.conns, c.fd)
	if c.isStream && f.streams[c.stream] == c {
		delete(f.streams, c.stream)
	}
	unix.Close(c.fd) // closing removes it from the epoll set
}

// read takes what the connection sent (level-triggered: one read per
// wake-up) and answers every whole request in it.
func (f *epollFloor) read(c *epollFloorConn) {
	n, err := unix.Read(c.fd, f.buf[:])
	if n <= 0 {
		if n == 0 || !errors.Is(err, unix.EAGAIN) {
			f.close(c)
		}
		return
	}
	if c.isStream {
		return // a stream's client sends nothing more
	}
	c.in = append(c.in, f.buf[:n]...)
	for {
		end := bytes.Index(c.in, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		head := c.in[:end]
		length, auth, bad := 0, "", false
		lines := bytes.Split(head, []byte("\r\n"))
		for _, l := range lines[1:] {
			name, value, _ := bytes.Cut(l, []byte(":"))
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				var err error
				length, err = strconv.Atoi(string(value))
				bad = bad || err != nil || length < 0 || length > maxPending
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				bad = true // only Content-Length bodies are read here
			case bytes.EqualFold(name, []byte("Authorization")):
				auth = string(bytes.TrimPrefix(value, []byte("Bearer ")))
			}
		}
		if bad {
			f.write(c, []byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
			f.close(c)
			return
		}
		if len(c.in) < end+4+length {
			return
		}
		body := c.in[end+4 : end+4+length]
		f.serve(c, string(lines[0]), auth, body)
		if f.conns[c.fd] != c {
			return // closed while answering
		}
		if c.isStream {
			c.in = nil
			return
		}
		c.in = append(c.in[:0], c.in[end+4+length:]...)
	}
}

func (f *epollFloor) serve(c *epollFloorConn, line, token string, body []byte) {
	answer := func(status, body string) {
		f.write(c, fmt.Appendf(nil, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body))
	}
	method, target, _ := strings.Cut(line, " ")
	target, _, _ = strings.Cut(target, " ")
	path, _, _ := strings.Cut(target, "?")
	switch route := method + " " + path; route {
	case "GET /events":
		id, ok := floorEmployee(token)
		if !ok {
			answer("401 Unauthorized", `{}`)
			return
		}
		c.isStream, c.stream = true, id
		f.streams[id] = c
		f.write(c, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\nretry: 5000\n: connected\n\n"))
	case "POST /notifications":
		m, err := decodeFloorPublish(body)
		if err != nil {
			answer("400 Bad Request", `{}`)
			return
		}
		n := 0
		for s := range floorRecipients(f.streams, m) {
			f.write(s, m.frame)
			n++
		}
		answer("202 Accepted", fmt.Sprintf(`{"recipients":%d}`, n))
	case "GET /notifications": // the bench's preflight
		answer("200 OK", `{"items":[]}`)
	case "GET /metrics":
		answer("200 OK", fmt.Sprintf("herald_streams_open %d\n", len(f.streams)))
	default:
		answer("404 Not Found", `{}`)
	}
}

// write sends b without blocking; what the socket cannot take waits in the
// connection's out buffer for EPOLLOUT, after anything already waiting.
func (f *epollFloor) write(c *epollFloorConn, b []byte) {
	if f.conns[c.fd] != c {
		return // closed
	}
	if len(c.out) > 0 {
		if len(c.out)+len(b) > maxPending {
			f.close(c)
			return
		}
		c.out = append(c.out, b...)
		return
	}
	n, err := unix.Write(c.fd, b)
	if n == len(b) {
		return
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		f.close(c)
		return
	}
	c.out = append(c.out, b[max(n, 0):]...)
	_ = unix.EpollCtl(f.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT, Fd: int32(c.fd)})
}

// flush writes what waited once the socket has room again.
func (f *epollFloor) flush(c *epollFloorConn) {
	n, err := unix.Write(c.fd, c.out)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		f.close(c)
		return
	}
	c.out = c.out[max(n, 0):]
	if len(c.out) == 0 {
		c.out = nil
		_ = unix.EpollCtl(f.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
	}
}

// rawEpollWait waits without telling the Go runtime. A goroutine blocked in
// unix.EpollWait is in a system call, so the runtime's monitor soon hands
// its P to another thread and wakes that thread to look for work: a context
// switch or two per wait (BENCHMARKS.md, "The event-loop floor"). Hidden
// from the runtime, the goroutine keeps its P through the wait; the
// monitor's preemption signal (SIGURG, a few dozen a second) interrupts the
// wait with EINTR, so a collection never waits for it.
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
