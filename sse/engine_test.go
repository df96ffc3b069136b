package sse_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/corp/herald/sse"
)

// The engine over real sockets: an httptest server whose handler hands
// every request to the hub, as handlers does after authentication (the
// employee comes from the query here).

const wait = 5 * time.Second

type server struct {
	hub *sse.Hub
	url string
}

func newServer(t testing.TB, opts ...sse.Option) *server {
	t.Helper()
	hub := sse.NewHub(opts...)
	mux := http.NewServeMux()
	params := func(r *http.Request) sse.Params {
		emp, _ := strconv.ParseInt(r.URL.Query().Get("emp"), 10, 64)
		return sse.Params{Employee: emp, ExpiresAt: time.Now().Add(time.Hour)}
	}
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ServeSSE(w, r, params(r)); err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ServeWS(w, r, params(r)); err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		srv.Close()
	})
	return &server{hub: hub, url: srv.URL}
}

func (s *server) addr() string { return strings.TrimPrefix(s.url, "http://") }

// openSSE opens a raw SSE stream and returns a reader of its events (past
// the preamble).
func (s *server) openSSE(t *testing.T, emp int) (net.Conn, *sse.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events?emp=%d HTTP/1.1\r\nHost: x\r\n\r\n", emp)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open stream: %v %v", resp, err)
	}
	r := sse.NewReader(resp.Body)
	conn.SetReadDeadline(time.Now().Add(wait))
	if m, err := r.Next(); err != nil || m.Retry != sse.RetryMillis {
		t.Fatalf("preamble %+v, %v", m, err)
	}
	return conn, r
}

func (s *server) waitStreams(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if got, _ := s.hub.Stats(); got == n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := s.hub.Stats()
			t.Fatalf("%d streams open, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func notification(seq int64) *sse.Event {
	return sse.NewEvent(seq, "notification", fmt.Appendf(nil, `{"id":"%d"}`, seq))
}

// TestIdleStreamsHoldNoGoroutine: once open, SSE and WebSocket streams on
// HTTP/1.1 wait on the poller; the instance's goroutine count does not grow
// with them.
func TestIdleStreamsHoldNoGoroutine(t *testing.T) {
	s := newServer(t)
	before := runtime.NumGoroutine()
	const n = 50
	for i := range n {
		s.openSSE(t, i)
		dialWS(t, s, 1000+i)
	}
	s.waitStreams(t, 2*n)
	time.Sleep(50 * time.Millisecond) // let the handlers' goroutines return
	if grew := runtime.NumGoroutine() - before; grew > 10 {
		t.Fatalf("%d idle streams added %d goroutines, want none per stream", 2*n, grew)
	}
	// And they are live: a delivery reaches them.
	conn, r := s.openSSE(t, 7)
	s.hub.Deliver(7, notification(1))
	conn.SetReadDeadline(time.Now().Add(wait))
	if m, err := r.Next(); err != nil || m.ID != "1" {
		t.Fatalf("delivery to an idle stream: %+v, %v", m, err)
	}
}

// TestSSEClientLeavesOrTalks: a client closing its side ends the stream
// (client); one that sends bytes on an event stream is cut off.
func TestSSEClientLeavesOrTalks(t *testing.T) {
	s := newServer(t)
	a, _ := s.openSSE(t, 1)
	b, _ := s.openSSE(t, 2)
	s.waitStreams(t, 2)
	a.Close()
	s.waitStreams(t, 1)
	b.Write([]byte("hello"))
	s.waitStreams(t, 0)
	n := s.hub.Counters()
	if n.Ended(sse.TransportSSE, sse.EndClient) != 1 || n.Ended(sse.TransportSSE, sse.EndClientData) != 1 {
		t.Fatalf("ends: client %d, client_data %d; want 1 each",
			n.Ended(sse.TransportSSE, sse.EndClient), n.Ended(sse.TransportSSE, sse.EndClientData))
	}
}

// TestSlowReaderBounded: a client that stops reading fills its socket,
// then its queue, and is ended as a slow consumer; a reading stream of the
// same employee gets everything, in order.
func TestSlowReaderBounded(t *testing.T) {
	s := newServer(t, sse.WithQueueSize(16))
	stalled, err := net.DialTCP("tcp", nil, mustResolve(t, s.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.SetReadBuffer(4096)
	fmt.Fprintf(stalled, "GET /events?emp=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	conn, r := s.openSSE(t, 1)
	s.waitStreams(t, 2)
	pad := strings.Repeat("x", 16<<10)
	var read atomic.Int64 // how far the reading client got
	done := make(chan error, 1)
	go func() {
		for i := int64(1); i <= 400; i++ {
			conn.SetReadDeadline(time.Now().Add(wait))
			m, err := r.Next()
			if err != nil {
				done <- err
				return
			}
			if m.ID != strconv.FormatInt(i, 10) {
				done <- fmt.Errorf("event %d has id %q", i, m.ID)
				return
			}
			read.Store(i)
		}
		done <- nil
	}()
	for i := int64(1); i <= 400; i++ {
		s.hub.Deliver(1, sse.NewEvent(i, "notification", fmt.Appendf(nil, `{"id":"%d","pad":"%s"}`, i, pad)))
		for i-read.Load() > 8 { // the reading client keeps up: it is never 16 behind
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	s.waitStreams(t, 1)
	if n := s.hub.Counters().Ended(sse.TransportSSE, sse.EndSlowConsumer); n != 1 {
		t.Fatalf("slow_consumer ends = %d, want 1", n)
	}
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// dialWS opens /ws with a raw gobwas client (it answers nothing by itself).
func dialWS(t *testing.T, s *server, emp int) net.Conn {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+s.addr()+"/ws?emp="+strconv.Itoa(emp))
	if err != nil {
		t.Fatalf("dial ws: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestWSFramesPingsAndClose: events arrive as text frames; the server
// pings every heartbeat and the stream lives while the client answers;
// a client ping is answered; a client close is echoed; client messages are
// ignored and counted.
func TestWSFramesPingsAndClose(t *testing.T) {
	s := newServer(t, sse.WithHeartbeat(30*time.Millisecond))
	c := dialWS(t, s, 1)
	s.waitStreams(t, 1)
	s.hub.Deliver(1, notification(1))
	pings := 0
	var text []byte
	for pings < 3 || text == nil {
		c.SetReadDeadline(time.Now().Add(wait))
		h, err := ws.ReadHeader(c)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		payload := make([]byte, h.Length)
		io.ReadFull(c, payload)
		switch h.OpCode {
		case ws.OpPing:
			pings++
			wsutil.WriteClientMessage(c, ws.OpPong, payload)
		case ws.OpText:
			text = payload
		}
	}
	if string(text) != `{"event":"notification","id":"1","data":{"id":"1"}}` {
		t.Fatalf("text frame %s", text)
	}
	wsutil.WriteClientMessage(c, ws.OpText, []byte("ignored"))
	wsutil.WriteClientMessage(c, ws.OpPing, []byte("hi"))
	// One deadline for the whole wait: the server's own pings keep the
	// socket busy, so a deadline per read would never pass without a pong.
	deadline := time.Now().Add(wait)
	for {
		c.SetReadDeadline(deadline)
		f, err := ws.ReadFrame(c)
		if err != nil {
			t.Fatalf("no pong to the client's ping: %v (ends: %v)", err, ends(s.hub, sse.TransportWS))
		}
		if f.Header.OpCode == ws.OpPing {
			wsutil.WriteClientMessage(c, ws.OpPong, f.Payload)
		}
		if f.Header.OpCode == ws.OpPong {
			if string(f.Payload) != "hi" {
				t.Fatalf("pong payload %q, want the ping's", f.Payload)
			}
			break
		}
	}
	wsutil.WriteClientMessage(c, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	s.waitStreams(t, 0)
	n := s.hub.Counters()
	if n.Ignored(sse.TransportWS) != 1 || n.Ended(sse.TransportWS, sse.EndClient) != 1 {
		t.Fatalf("ignored %d, client ends %d; want 1, 1", n.Ignored(sse.TransportWS), n.Ended(sse.TransportWS, sse.EndClient))
	}
}

// ends lists the non-zero end counts of a transport.
func ends(h *sse.Hub, tr sse.Transport) map[string]int64 {
	out := map[string]int64{}
	for _, e := range sse.Ends {
		if n := h.Counters().Ended(tr, e); n > 0 {
			out[e.Reason] = n
		}
	}
	return out
}

// TestWSProtocolError: unmasked client frames break the protocol.
func TestWSProtocolError(t *testing.T) {
	s := newServer(t)
	c := dialWS(t, s, 1)
	s.waitStreams(t, 1)
	ws.WriteFrame(c, ws.NewTextFrame([]byte("unmasked")))
	s.waitStreams(t, 0)
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		frame, err := ws.ReadFrame(c)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if frame.Header.OpCode == ws.OpClose {
			if code, _ := ws.ParseCloseFrameData(frame.Payload); code != ws.StatusProtocolError {
				t.Fatalf("close code %d, want 1002", code)
			}
			return
		}
	}
}

// TestShutdownAnnounced: closing the hub tells every stream why, then ends
// the response properly (the last chunk).
func TestShutdownAnnounced(t *testing.T) {
	s := newServer(t)
	conn, r := s.openSSE(t, 1)
	s.waitStreams(t, 1)
	s.hub.Close()
	conn.SetReadDeadline(time.Now().Add(wait))
	m, err := r.Next()
	if err != nil || m.Event != "closed" || m.Data != `{"reason":"shutdown"}` || m.HasID {
		t.Fatalf("got %+v, %v; want event: closed with the reason and no id", m, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after closed: %v, want the end of the response", err)
	}
}

// TestTLSAndHTTP2: over TLS the poller cannot hold the connection; an
// HTTP/1.1 stream keeps a goroutine of its own (SSE and WebSocket), an
// HTTP/2 stream stays in net/http. The same state machine serves them:
// deliveries, heartbeats and the announced ending.
func TestTLSAndHTTP2(t *testing.T) {
	hub := sse.NewHub(sse.WithHeartbeat(50 * time.Millisecond))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emp, _ := strconv.ParseInt(r.URL.Query().Get("emp"), 10, 64)
		p := sse.Params{Employee: emp, ExpiresAt: time.Now().Add(time.Hour)}
		if r.URL.Path == "/ws" {
			hub.ServeWS(w, r, p)
			return
		}
		hub.ServeSSE(w, r, p)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer hub.Close() // first: streams end, so the server can close

	open := func(emp int, h2 bool) (*http.Response, *sse.Reader) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if !h2 {
			tr.ForceAttemptHTTP2 = false
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/events?emp=" + strconv.Itoa(emp))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if (resp.ProtoMajor == 2) != h2 {
			t.Fatalf("protocol %s, want HTTP/2: %v", resp.Proto, h2)
		}
		r := sse.NewReader(resp.Body)
		if m, err := r.Next(); err != nil || m.Retry != sse.RetryMillis {
			t.Fatalf("preamble %+v %v", m, err)
		}
		return resp, r
	}
	_, r1 := open(1, false)
	_, r2 := open(2, true)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.NextProtos = []string{"http/1.1"} // WebSocket upgrades are HTTP/1.1
	d := ws.Dialer{TLSConfig: tc}
	wsc, _, _, err := d.Dial(context.Background(), "wss://"+strings.TrimPrefix(srv.URL, "https://")+"/ws?emp=3")
	if err != nil {
		t.Fatal(err)
	}
	defer wsc.Close()
	for got, _ := hub.Stats(); got != 3; got, _ = hub.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	for emp, r := range map[int64]*sse.Reader{1: r1, 2: r2} {
		hub.Deliver(emp, notification(1))
		beat, got := false, false
		for !beat || !got {
			m, err := r.Next()
			if err != nil {
				t.Fatalf("employee %d: %v", emp, err)
			}
			beat = beat || len(m.Comments) > 0 && m.Comments[0] == "heartbeat"
			got = got || m.ID == "1" && m.Event == "notification"
		}
	}
	hub.Deliver(3, notification(1))
	for {
		wsc.SetReadDeadline(time.Now().Add(wait))
		f, err := ws.ReadFrame(wsc)
		if err != nil {
			t.Fatalf("ws over TLS: %v", err)
		}
		if f.Header.OpCode == ws.OpPing {
			wsutil.WriteClientMessage(wsc, ws.OpPong, nil)
		}
		if f.Header.OpCode == ws.OpText {
			if !strings.Contains(string(f.Payload), `"id":"1"`) {
				t.Fatalf("ws frame %s", f.Payload)
			}
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go hub.Shutdown(ctx)
	for emp, r := range map[int64]*sse.Reader{1: r1, 2: r2} {
		for {
			m, err := r.Next()
			if err != nil {
				t.Fatalf("employee %d: %v before the ending", emp, err)
			}
			if m.Event == "closed" {
				if m.Data != `{"reason":"shutdown"}` {
					t.Fatalf("employee %d ending %+v", emp, m)
				}
				break
			}
		}
	}
}
