package tcpproxy_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/corp/herald/internal/tcpproxy"
)

// echoServer echoes lines back until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads it back; it fails the test when the line
// does not come back within 10s.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo of %q = %q, %v", line, got, err)
	}
}

// broken reports whether a connection is unusable: a read returns an error
// (EOF or reset) rather than timing out.
func broken(c net.Conn, r *bufio.Reader) bool {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x\n"))
	_, err := r.ReadString('\n')
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestForwardCutRestore(t *testing.T) {
	p := tcpproxy.Start(t, echoServer(t))
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "hello")

	p.Cut()
	if !broken(c, r) {
		t.Fatal("an open connection survived Cut")
	}
	c2, r2 := dial(t, p.Addr()) // accepted, then closed
	if !broken(c2, r2) {
		t.Fatal("a new connection worked during Cut")
	}
	if p.Closed() < 1 {
		t.Fatalf("Closed() = %d after Cut, want at least 1", p.Closed())
	}

	p.Restore()
	c3, r3 := dial(t, p.Addr())
	roundTrip(t, c3, r3, "back")
}

func TestStallHoldsBytes(t *testing.T) {
	p := tcpproxy.Start(t, echoServer(t))
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "before")

	p.Stall()
	c.Write([]byte("held\n"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if got, err := r.ReadString('\n'); err == nil {
		t.Fatalf("read %q during Stall, want nothing", got)
	}
	// A client that gives up during the stall is noticed at once.
	before := p.Closed()
	c2, _ := dial(t, p.Addr())
	c2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for p.Closed() == before {
		if time.Now().After(deadline) {
			t.Fatal("a connection closed during Stall was not noticed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	p.Restore()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Restore read %q, %v; want the held line", got, err)
	}
	roundTrip(t, c, r, "after")
}
