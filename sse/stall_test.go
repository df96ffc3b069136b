//go:build linux

package sse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestExpiryWhileWriteBlocked: a token that expires while the stream's
// worker waits on a client's full socket ends the stream then (the wheel's
// timer stops it and aborts the write), not when the write gives up 10 s
// later as write_timeout. The client, reading again, gets the event under
// way whole, then token_expired and the end of the response. On the poller
// and on goroutine streams, over a real socket.
func TestExpiryWhileWriteBlocked(t *testing.T) {
	defer SetFinalTimeout(2 * time.Minute)() // generous: the client reads again at once
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutines=%v", goroutines), func(t *testing.T) {
			h := NewHub(WithGoroutines(goroutines), WithHeartbeat(time.Hour)) // nothing else is written
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = h.ServeSSE(w, r, Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)})
			}))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := h.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				srv.Close()
			})
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(2 * time.Minute)) // generous: megabytes, -race, a loaded machine
			fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The preamble, a byte at a time: nothing after it is read yet.
			var pre []byte
			for b := make([]byte, 1); !bytes.HasSuffix(pre, []byte("\n\n")); pre = append(pre, b[0]) {
				if _, err := io.ReadFull(resp.Body, b); err != nil {
					t.Fatalf("preamble %q: %v", pre, err)
				}
			}
			var s *stream
			for deadline := time.Now().Add(5 * time.Second); s == nil; time.Sleep(time.Millisecond) {
				if all := h.snapshot(nil); len(all) == 1 {
					s = all[0]
				} else if time.Now().After(deadline) {
					t.Fatal("the stream never opened")
				}
			}
			// 8 MiB: more than the socket buffers hold (see bigEvent in
			// ending_test.go); the client peeks until its first bytes
			// arrive, then stops reading.
			var pad bytes.Buffer
			pad.WriteString(`{"id":"1","pad":[`)
			for range 8 << 10 {
				pad.WriteString(`"` + strings.Repeat("x", 1000) + `",` + "\n")
			}
			pad.WriteString(`""]}`)
			big := NewEvent(1, "notification", pad.Bytes())
			h.Deliver(1, big)
			if _, err := br.Peek(1); err != nil {
				t.Fatal(err)
			}
			h.Deliver(1, ev(2)) // waits behind it: the worker writes, blocked
			s.mu.Lock()
			working := s.working
			s.mu.Unlock()
			if !working {
				t.Fatal("no worker is writing")
			}
			s.onTimer(s.expiresAt) // the wheel, at the token's exp
			s.mu.Lock()
			end := s.end
			s.mu.Unlock()
			if end != EndTokenExpired {
				t.Fatalf("after the expiry the stream's end is %v, want token_expired at once", end)
			}
			// Read at once (a slow parse would keep the server waiting), then parse.
			all, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v (the response was cut, not ended)", len(all), err)
			}
			var got []string
			for r := NewReader(bytes.NewReader(all)); ; {
				m, err := r.Next()
				if err != nil {
					break
				}
				if m.Dispatched() {
					got = append(got, m.Event+" "+m.ID+" "+fmt.Sprint(len(m.Data)))
				}
			}
			if len(got) != 2 || got[0] != fmt.Sprintf("notification 1 %d", len(big.Data)) || !strings.HasPrefix(got[1], "token_expired  ") {
				t.Fatalf("the client read %q, want the big event whole, then token_expired", got)
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				if n, _ := h.Stats(); n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the stream was not closed")
				}
			}
			if n := h.Counters().Ended(TransportSSE, EndTokenExpired); n != 1 {
				t.Fatalf("token_expired ends %d, want 1", n)
			}
		})
	}
}

// TestEndingReplacesUnsentFrame: closing a poller connection whose socket
// was full drops a pending frame none of whose bytes went out (the client
// resumes from its position) and writes the ending in its place, once the
// client has made room. A socket pair makes "full" exact.
func TestEndingReplacesUnsentFrame(t *testing.T) {
	h := NewHub()
	defer h.Close()
	if h.poller == nil {
		t.Fatal("the hub has no poller on Linux (epoll failed to start)")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	client := fds[1]
	defer unix.Close(client)
	c := &fdConn{p: h.poller, fd: fds[0]}
	filled := 0
	for {
		if n, err := unix.Write(c.fd, []byte{'.'}); err != nil {
			break
		} else {
			filled += n
		}
	}
	frame := []byte("a whole frame that finds the socket full")
	if ok, end := c.tryWrite(frame); !ok || end != nil || string(c.pending) != string(frame) || !c.whole {
		t.Fatalf("tryWrite: ok %v end %v, pending %q whole %v; want all of it pending", ok, end, c.pending, c.whole)
	}
	readAll := func() []byte {
		var out []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(client, buf)
			if n > 0 {
				out = append(out, buf[:n]...)
				continue
			}
			if n == 0 && err == nil {
				return append(out, "<EOF>"...)
			}
			return out
		}
	}
	if got := readAll(); len(got) != filled {
		t.Fatalf("the client read %d bytes, want the %d written", len(got), filled)
	}
	c.close([]byte("the ending"))
	if got := string(readAll()); got != "the ending<EOF>" {
		t.Fatalf("after the close the client read %q, want the ending and the end", got)
	}
}
