package postgres

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDialerUserTimeout: the pool's dialer sets TCP_USER_TIMEOUT on its TCP
// connections (a server that stops acknowledging is dropped after
// userTimeout instead of the kernel's ~15 minutes), and still dials a Unix
// socket, which has no TCP options.
func TestDialerUserTimeout(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := newDialer().DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial TCP: %v", err)
	}
	defer c.Close()
	if got, want := userTimeoutOf(t, c), int(userTimeout.Milliseconds()); got != want {
		t.Errorf("TCP_USER_TIMEOUT of a dialed TCP connection = %d ms, want %d", got, want)
	}

	sock := filepath.Join(t.TempDir(), "pg.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	uc, err := newDialer().DialContext(ctx, "unix", sock)
	if err != nil {
		t.Fatalf("dial a Unix socket: %v", err)
	}
	uc.Close()
}

// TestSetUserTimeoutReportsFailure: a socket that refuses the option (UDP
// has no TCP_USER_TIMEOUT) makes setUserTimeout fail rather than pass in
// silence.
func TestSetUserTimeoutReportsFailure(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rc, err := pc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := setUserTimeout(rc, time.Second); err == nil {
		t.Error("setUserTimeout on a UDP socket returned nil, want the setsockopt error")
	}
}

func userTimeoutOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		v    int
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestClosedByPeer: a pooled connection is found dead when the server
// closed it or reset it, or spoke unasked, and alive while it is quiet;
// the peek takes no byte.
func TestClosedByPeer(t *testing.T) {
	pair := func(t *testing.T) (client, server net.Conn) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			s, _ := ln.Accept()
			accepted <- s
		}()
		client, err = net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server = <-accepted
		if server == nil {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { client.Close(); server.Close() })
		return client, server
	}
	// eventually: what the peer did reaches the client asynchronously.
	eventually := func(t *testing.T, what string, c net.Conn) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !closedByPeer(c) {
			if time.Now().After(deadline) {
				t.Fatalf("closedByPeer still false 10s after the server %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("quiet", func(t *testing.T) {
		c, _ := pair(t)
		if closedByPeer(c) {
			t.Fatal("closedByPeer of a quiet, open connection = true")
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, s := pair(t)
		s.Close()
		eventually(t, "closed it", c)
	})
	t.Run("reset", func(t *testing.T) {
		c, s := pair(t)
		_ = s.(*net.TCPConn).SetLinger(0) // close with RST
		s.Close()
		eventually(t, "reset it", c)
	})
	t.Run("spoke", func(t *testing.T) {
		c, s := pair(t)
		if _, err := s.Write([]byte("E")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "wrote a byte", c)
		buf := make([]byte, 1)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil || buf[0] != 'E' {
			t.Fatalf("after the peek, read %q, %v; want the byte still there", buf, err)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if closedByPeer(a) {
			t.Fatal("closedByPeer of a net.Pipe = true; it cannot tell, so false")
		}
	})
}

// TestListenerDialerShutdownEndsDial: shutdown ends a dial in progress (a
// listener being closed does not wait for a server that does not answer
// its SYN), whether the dial began before or after it.
func TestListenerDialerShutdownEndsDial(t *testing.T) {
	addr := unansweredAddr(t)
	d := newListenerDialer()
	done := make(chan error, 1)
	go func() {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	d.shutdown()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a dial to a server that never answers succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial still running 10s after shutdown")
	}
}

// unansweredAddr returns the address of a TCP socket that listens but whose
// accept queue is full (backlog 0, never accepted): the kernel drops the
// SYNs of further connects, which hang as to a host that does not answer.
func unansweredAddr(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue until a connect times out: from then on every SYN is
	// dropped.
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return addr
			}
			t.Fatalf("filling the accept queue of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("64 connects to %s with backlog 0 all succeeded", addr)
	return ""
}
