package sse_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/corp/herald/sse"
)

// gateSource is a store whose Head waits at a barrier: the test delivers
// while a stream is opening (registered, its connection not yet served).
type gateSource struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate() *gateSource {
	return &gateSource{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateSource) Head(ctx context.Context, _ int64) (int64, error) {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (g *gateSource) Since(context.Context, int64, int64, int) ([]*sse.Event, error) {
	return nil, nil
}

// fillWhileOpening waits until a stream of employee 1 is opening, delivers
// one event more than the queue holds, and lets the stream go on.
func fillWhileOpening(t *testing.T, s *server, g *gateSource, queue int) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(wait):
		t.Fatal("the stream never read its starting position")
	}
	for i := int64(1); i <= int64(queue); i++ {
		if n := s.hub.Deliver(1, notification(i)); n != 1 {
			t.Fatalf("event %d reached %d streams, want 1 (queued)", i, n)
		}
	}
	if n := s.hub.Deliver(1, notification(int64(queue)+1)); n != 0 {
		t.Fatalf("the event beyond the queue reached %d streams, want 0", n)
	}
	close(g.release)
}

// TestWSSlowConsumerCloseCode: a WebSocket stream whose queue fills is
// ended with close code 1013 (try again later) and its reason, on a real
// socket with room for the frame: the queue is filled while the stream
// opens, before its socket is served.
func TestWSSlowConsumerCloseCode(t *testing.T) {
	const queue = 4
	g := newGate()
	s := newServer(t, sse.WithSource(g), sse.WithQueueSize(queue))
	type dialed struct {
		c  net.Conn
		br *bufio.Reader // what came with the handshake's answer, if anything
	}
	ch := make(chan dialed, 1)
	go func() {
		c, br, _, err := ws.Dial(context.Background(), "ws://"+s.addr()+"/ws?emp=1")
		if err != nil {
			t.Errorf("dial: %v", err)
		}
		ch <- dialed{c, br}
	}()
	fillWhileOpening(t, s, g, queue)
	d := <-ch
	if d.c == nil {
		return
	}
	defer d.c.Close()
	d.c.SetReadDeadline(time.Now().Add(wait))
	var r io.Reader = d.c
	if d.br != nil {
		r = io.MultiReader(d.br, d.c)
	}
	f, err := ws.ReadFrame(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	code, reason := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != 1013 || reason != "too slow; reconnect and resume" {
		t.Fatalf("first frame %v %q (close %d %q), want close 1013 with its reason", f.Header.OpCode, f.Payload, code, reason)
	}
	s.waitStreams(t, 0)
	if n := s.hub.Counters().Ended(sse.TransportWS, sse.EndSlowConsumer); n != 1 {
		t.Fatalf("slow_consumer ends %d, want 1", n)
	}
}

// TestSSESlowConsumerAnnounced: the same on /events: event: closed with
// the reason, then the end of the response.
func TestSSESlowConsumerAnnounced(t *testing.T) {
	const queue = 4
	g := newGate()
	s := newServer(t, sse.WithSource(g), sse.WithQueueSize(queue))
	type opened struct {
		r   *sse.Reader
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		conn, err := net.Dial("tcp", s.addr())
		if err != nil {
			ch <- opened{err: err}
			return
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetReadDeadline(time.Now().Add(2 * wait))
		fmt.Fprintf(conn, "GET /events?emp=1 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			ch <- opened{err: err}
			return
		}
		ch <- opened{r: sse.NewReader(resp.Body)}
	}()
	fillWhileOpening(t, s, g, queue)
	o := <-ch
	if o.err != nil {
		t.Fatal(o.err)
	}
	var got []string
	for {
		m, err := o.r.Next()
		if err != nil {
			break
		}
		if m.Dispatched() {
			got = append(got, m.Event+" "+m.Data)
		}
	}
	if strings.Join(got, "|") != `closed {"reason":"slow_consumer"}` {
		t.Fatalf("events %q, want only closed with slow_consumer", got)
	}
}

// TestWSSlowReaderAborted: a WebSocket client that stops reading fills its
// socket, then its queue, and is cut off (slow_consumer) without holding
// up deliveries; its connection is closed (a socket that stays full cannot
// take a close frame: it sees the end of the connection after what was
// sent, or a 1013 close if there was room; a client that reads again is
// told: TestSlowConsumerToldAfterFullSocket). Another employee's stream is
// untouched.
func TestWSSlowReaderAborted(t *testing.T) {
	s := newServer(t, sse.WithQueueSize(16))
	stalled, _, _, err := ws.Dial(context.Background(), "ws://"+s.addr()+"/ws?emp=1")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	other := dialWS(t, s, 2)
	s.waitStreams(t, 2)
	pad := strings.Repeat("x", 16<<10)
	sent := 0
	// Deliver until the stalled stream stops taking events (it ended; its
	// end is counted a moment later, when its worker closes it).
	for i := int64(1); ; i++ {
		if i > 10_000 { // 160 MB: far more than any socket buffers
			t.Fatalf("the stalled client was never cut off (ends %v)", ends(s.hub, sse.TransportWS))
		}
		start := time.Now()
		n := s.hub.Deliver(1, sse.NewEvent(i, "notification", fmt.Appendf(nil, `{"id":"%d","pad":"%s"}`, i, pad)))
		if d := time.Since(start); d > wait {
			t.Fatalf("a delivery to a stalled client took %v", d)
		}
		if n == 0 {
			break
		}
		sent++
	}
	// The end is counted when the stream's worker finishes it; a worker
	// blocked in a write is aborted (TestAbortBeforeBlockedWrite), not left
	// to the write timeout (10 s).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := s.hub.Stats(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was not closed within 15 s")
		}
	}
	if n := s.hub.Counters().Ended(sse.TransportWS, sse.EndSlowConsumer); n != 1 {
		t.Fatalf("slow_consumer ends %d, want 1 (%v)", n, ends(s.hub, sse.TransportWS))
	}
	// The stalled client drains what reached it, then finds the connection closed.
	stalled.SetReadDeadline(time.Now().Add(wait))
	frames := 0
	for {
		f, err := ws.ReadFrame(stalled)
		if err != nil {
			break
		}
		if f.Header.OpCode == ws.OpClose {
			if code, _ := ws.ParseCloseFrameData(f.Payload); code != 1013 {
				t.Fatalf("close code %d, want 1013", code)
			}
			break
		}
		if f.Header.OpCode == ws.OpText {
			frames++
		}
	}
	if frames >= sent {
		t.Fatalf("the stalled client read all %d events; it should have lost the rest", sent)
	}
	if _, err := ws.ReadFrame(stalled); err == nil {
		t.Fatal("the stalled client's connection is still open")
	}
	s.hub.Deliver(2, notification(1))
	other.SetReadDeadline(time.Now().Add(wait))
	for {
		f, err := ws.ReadFrame(other)
		if err != nil {
			t.Fatalf("other employee's stream: %v", err)
		}
		if f.Header.OpCode == ws.OpText {
			break
		}
	}
}

// TestParkedStreamClientBytes: streams that hold a goroutine of their own
// (TLS on HTTP/1.1, which the poller cannot hold) read what the client
// sends too: an SSE client that sends bytes is cut off
// (client_data); a WebSocket client's data frames are ignored and counted
// and its pings answered.
func TestParkedStreamClientBytes(t *testing.T) {
	hub := sse.NewHub()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emp, _ := strconv.ParseInt(r.URL.Query().Get("emp"), 10, 64)
		p := sse.Params{Employee: emp, ExpiresAt: time.Now().Add(time.Hour)}
		if r.URL.Path == "/ws" {
			hub.ServeWS(w, r, p)
			return
		}
		hub.ServeSSE(w, r, p)
	}))
	srv.StartTLS()
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.NextProtos = []string{"http/1.1"}
	addr := strings.TrimPrefix(srv.URL, "https://")
	waitOpen := func(n int) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for got, _ := hub.Stats(); got != n; got, _ = hub.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("%d streams open, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// SSE over TLS, HTTP/1.1: taken over onto a goroutine of its own.
	conn, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events?emp=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open: %v %v", resp, err)
	}
	r := sse.NewReader(resp.Body)
	if m, err := r.Next(); err != nil || m.Retry != sse.RetryMillis {
		t.Fatalf("preamble %+v %v", m, err)
	}
	waitOpen(1)
	conn.Write([]byte("hello"))
	waitOpen(0)
	if n := hub.Counters().Ended(sse.TransportSSE, sse.EndClientData); n != 1 {
		t.Fatalf("client_data ends %d, want 1 (%v)", n, ends(hub, sse.TransportSSE))
	}

	// WebSocket over TLS: data ignored, a ping answered.
	d := ws.Dialer{TLSConfig: tc}
	wsc, _, _, err := d.Dial(context.Background(), "wss://"+addr+"/ws?emp=2")
	if err != nil {
		t.Fatal(err)
	}
	defer wsc.Close()
	waitOpen(1)
	wsutil.WriteClientMessage(wsc, ws.OpText, []byte("ignored"))
	wsutil.WriteClientMessage(wsc, ws.OpPing, []byte("p"))
	wsc.SetReadDeadline(time.Now().Add(wait))
	for {
		f, err := ws.ReadFrame(wsc)
		if err != nil {
			t.Fatalf("no pong: %v", err)
		}
		if f.Header.OpCode == ws.OpPong {
			if string(f.Payload) != "p" {
				t.Fatalf("pong %q, want p", f.Payload)
			}
			break
		}
	}
	if n := hub.Counters().Ignored(sse.TransportWS); n != 1 {
		t.Fatalf("ignored %d client messages, want 1", n)
	}
	if n, _ := hub.Stats(); n != 1 {
		t.Fatalf("%d streams open after the client's messages, want 1", n)
	}
}
