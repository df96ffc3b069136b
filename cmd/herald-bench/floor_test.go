package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/auth"
)

// TestFloorDeliversThePublish: both floor servers (net/http, and the event
// loop on Linux) stream to the employee a bench token names, write a
// publish's event to that stream only, and a publish to everyone to every
// stream, in the shape the bench reads (event: notification, the data as
// sent).
func TestFloorDeliversThePublish(t *testing.T) {
	if id, ok := floorEmployee(floorToken(t, 7)); !ok || id != 7 {
		t.Fatalf("token of %s read as employee %d (%v)", username(7), id, ok)
	}
	for _, bad := range []string{"", "a.b", "x.!!.y", "x.eyJ1c2VyIjoiYWxpY2UifQ.y"} { // the last: user "alice"
		if _, ok := floorEmployee(bad); ok {
			t.Fatalf("token %q accepted", bad)
		}
	}
	for _, hold := range []string{"goroutine", "epoll", "nbio"} {
		t.Run("net/http, hold="+hold, func(t *testing.T) {
			if hold == "epoll" && runtime.GOOS != "linux" {
				t.Skip("the epoll holder is for Linux only")
			}
			f := &floor{streams: map[int64]*floorStream{}}
			if hold != "goroutine" {
				h, err := newHolder(hold)
				if err != nil {
					t.Fatal(err)
				}
				defer h.stop()
				f.holder = h
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			checkFloor(t, srv.URL)
			if hold != "goroutine" {
				waitFloorStreams(t, f, 0) // the clients have left: the holder noticed
			}
		})
	}
	t.Run("epoll", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the event-loop floor is for Linux only")
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- runFloor(ctx, []string{"--epoll", "--addr", "127.0.0.1:0"}, pw, io.Discard) }()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		url := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
		checkFloor(t, url)
		// A body it does not read (negative or chunked) is refused, not a crash.
		for _, head := range []string{"Content-Length: -5", "Transfer-Encoding: chunked"} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(conn, "POST /notifications HTTP/1.1\r\nHost: x\r\n"+head+"\r\n\r\n")
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(conn)
			conn.Close()
			if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
				t.Fatalf("%s: answered %q", head, got)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the floor ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the floor did not stop with its context")
		}
	})
}

// waitFloorStreams waits until the floor holds n streams.
func waitFloorStreams(t *testing.T, f *floor, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		have := len(f.streams)
		f.mu.Unlock()
		if have == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the floor holds %d streams, want %d", have, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func floorToken(t *testing.T, id int64) string {
	t.Helper()
	tok, err := auth.MintHS256([]byte("any"), auth.TokenSpec{User: username(id), TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkFloor(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var opened []*http.Response
	defer func() { // the clients leave
		for _, resp := range opened {
			resp.Body.Close()
		}
	}()
	open := func(id int64) *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+floorToken(t, id))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, resp)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("GET /events: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		return bufio.NewReader(resp.Body)
	}
	read := func(br *bufio.Reader, lines int) string {
		var b strings.Builder
		for range lines {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v after %q", err, b.String())
			}
			b.WriteString(l)
		}
		return b.String()
	}
	seven, nine := open(7), open(9)
	for _, br := range []*bufio.Reader{seven, nine} {
		if got := read(br, 3); got != "retry: 5000\n: connected\n\n" {
			t.Fatalf("preamble %q", got)
		}
	}
	publish := func(to string) string {
		body := `{"to":{` + to + `},"type":"bench.load","title":"t","data":{"n":1}}`
		resp, err := http.Post(base+"/notifications", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.Status + " " + b.String()
	}
	if got := publish(`"employees":[8]`); got != `202 Accepted {"recipients":0}` {
		t.Fatalf("publish to another employee: %s", got)
	}
	if got := publish(`"employees":[7]`); got != `202 Accepted {"recipients":1}` {
		t.Fatalf("publish: %s", got)
	}
	if got, want := read(seven, 3), "event: notification\ndata: {\"type\":\"bench.load\",\"title\":\"t\",\"data\":{\"n\":1}}\n\n"; got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
	if got := publish(`"all":true`); got != `202 Accepted {"recipients":2}` {
		t.Fatalf("publish to everyone: %s", got)
	}
	// Stream 9 got nothing before the publish to everyone: its next event
	// is that one.
	for _, br := range []*bufio.Reader{seven, nine} {
		if got, want := read(br, 3), "event: notification\ndata: {\"type\":\"bench.load\",\"title\":\"t\",\"data\":{\"n\":1}}\n\n"; got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}
}
