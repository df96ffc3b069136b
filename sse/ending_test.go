//go:build linux

package sse_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/corp/herald/sse"
)

// These tests stall a real client: it stops reading, so its socket fills
// (deterministically: one event is far larger than the socket buffers),
// then the stream is ended while bytes wait. The client must still be told
// why when it reads again, and the stream must close without waiting for
// the write timeout. Their servers send no heartbeats: nothing but the
// events is written.

// bigEvent is notification 1 of 8 MiB, in lines of about 1 KB (a Reader's
// lines are limited): more than a client that does not read and the
// server's socket together hold (the server's send buffer grows to 4 MiB
// at most, net.ipv4.tcp_wmem; the client's receive buffer is fixed at
// 64 KiB, stalledDialer). One value: its encodings are made once.
var bigEvent = sync.OnceValue(func() *sse.Event {
	var b bytes.Buffer
	b.WriteString(`{"id":"1","pad":[`)
	line := `"` + strings.Repeat("x", 1000) + `",` + "\n"
	for range 8 << 10 {
		b.WriteString(line)
	}
	b.WriteString(`""]}`)
	return sse.NewEvent(1, "notification", b.Bytes())
})

// stallWait bounds the reads of the stalling tests, and how long the
// server waits for a stalled client to take an ending: generous, as they
// move megabytes, under the race detector, on a loaded machine.
const stallWait = 2 * time.Minute

// skipPreamble reads the preamble of an SSE response body one byte at a
// time, so that nothing after it is read yet.
func skipPreamble(t *testing.T, body io.Reader) {
	t.Helper()
	var got []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(got, []byte("\n\n")) {
		if _, err := io.ReadFull(body, b); err != nil {
			t.Fatalf("preamble %q: %v", got, err)
		}
		got = append(got, b[0])
	}
	if !bytes.HasPrefix(got, []byte("retry: ")) {
		t.Fatalf("preamble %q", got)
	}
}

// readEvents reads an SSE response body to its end, at once (a slow parse
// would keep the server waiting), then lists its events as
// "event id data-length"; an error if the response was cut.
func readEvents(body io.Reader) ([]string, error) {
	all, err := io.ReadAll(body)
	var got []string
	r := sse.NewReader(bytes.NewReader(all))
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		if m.Dispatched() {
			got = append(got, m.Event+" "+m.ID+" "+fmt.Sprint(len(m.Data)))
		}
	}
	return got, err
}

// stalledDialer dials with a receive buffer of 64 KiB set on the socket:
// set explicitly, it is not autotuned, so a client that stops reading
// holds at most that much. Autotuned, it could grow towards
// net.ipv4.tcp_rmem's maximum (32 MiB here) and take the whole big event,
// and how much a stalled client holds would depend on the machine.
var stalledDialer = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
	})
	if err != nil {
		return err
	}
	return serr
}}

// stalledSSE opens /events for emp and reads the response head and
// preamble; the caller reads the rest (or not) from body, and peeks at
// what arrived with br.
func stalledSSE(t *testing.T, s *server, emp int) (conn net.Conn, br *bufio.Reader, body io.Reader) {
	t.Helper()
	conn, err := stalledDialer.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(wait))
	fmt.Fprintf(conn, "GET /events?emp=%d HTTP/1.1\r\nHost: x\r\n\r\n", emp)
	br = bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open stream: %v %v", resp, err)
	}
	skipPreamble(t, resp.Body)
	return conn, br, resp.Body
}

// stalledWS opens /ws for emp.
func stalledWS(t *testing.T, s *server, emp int) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return stalledDialer.DialContext(ctx, network, addr)
	}}
	conn, br, _, err := d.Dial(context.Background(), fmt.Sprintf("ws://%s/ws?emp=%d", s.addr(), emp))
	if err != nil {
		t.Fatalf("dial ws: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if br != nil {
		return conn, bufio.NewReader(io.MultiReader(br, conn))
	}
	return conn, bufio.NewReader(conn)
}

// overflow delivers to emp the big event 1, which fills the stalled socket
// (the client peeks until its first bytes arrive: it is under way), then
// small events until the stream's queue of queue events overflows, and
// returns how many small events the stream took.
//
// The worker may take one small event from the queue, and the kernel may
// take a few more before the socket is full: a CI run once saw 6 taken
// with a queue of 4. What the client then reads (the small events it got,
// in order, between the big one and the ending) is checked by the caller;
// the bound here only keeps a stream that never stalls from looping.
func overflow(t *testing.T, s *server, conn net.Conn, br *bufio.Reader, emp int64, queue int) (taken int) {
	t.Helper()
	if n := s.hub.Deliver(emp, bigEvent()); n != 1 {
		t.Fatalf("the big event reached %d streams", n)
	}
	conn.SetReadDeadline(time.Now().Add(stallWait))
	if _, err := br.Peek(1); err != nil {
		t.Fatalf("the big event never started: %v", err)
	}
	for i := int64(2); ; i++ {
		if i > int64(queue)+64 {
			t.Fatalf("%d events taken by a stalled stream with a queue of %d", i-1, queue)
		}
		if s.hub.Deliver(emp, notification(i)) == 0 {
			return int(i) - 2
		}
	}
}

// checkStalledRead checks what a stalled client read once it read again:
// the big event whole, then small events 2, 3, … in order (those the
// socket took before it was full, at most taken of them), then the
// ending.
func checkStalledRead(t *testing.T, got []string, big string, small func(i int64) string, ending string, taken int) {
	t.Helper()
	ok := len(got) >= 2 && len(got)-2 <= taken && got[0] == big && got[len(got)-1] == ending
	for k := 1; ok && k < len(got)-1; k++ {
		ok = got[k] == small(int64(k)+1)
	}
	if !ok {
		t.Fatalf("the client read %q: want %q, then at most %d of %q, %q, … in order, then %q", got, big, taken, small(2), small(3), ending)
	}
}

// TestSlowConsumerToldAfterFullSocket: a client that stopped reading until
// its queue overflowed gets, once it reads again, what was under way (the
// event whose first bytes had gone out, whole), then the ending: on SSE
// `event: closed` with slow_consumer and the end of the response, on
// WebSocket close 1013; the events that waited behind are dropped (it
// resumes from its position). On the poller and on goroutine streams.
func TestSlowConsumerToldAfterFullSocket(t *testing.T) {
	// Generous: the client reads again right after its stream ended.
	defer sse.SetFinalTimeout(stallWait)()
	const queue = 4
	for _, goroutines := range []bool{false, true} {
		mode := map[bool]string{false: "poller", true: "goroutines"}[goroutines]
		t.Run("sse/"+mode, func(t *testing.T) {
			s := newServer(t, sse.WithQueueSize(queue), sse.WithGoroutines(goroutines), sse.WithHeartbeat(time.Hour))
			conn, br, body := stalledSSE(t, s, 1)
			s.waitStreams(t, 1)
			taken := overflow(t, s, conn, br, 1, queue)
			got, err := readEvents(body)
			if err != nil {
				t.Fatalf("after %q: %v (the response was cut, not ended)", got, err)
			}
			checkStalledRead(t, got, "notification 1 "+fmt.Sprint(len(bigEvent().Data)), func(i int64) string {
				return fmt.Sprintf("notification %d %d", i, len(notification(i).Data))
			}, "closed  "+fmt.Sprint(len(`{"reason":"slow_consumer"}`)), taken)
			s.waitStreams(t, 0)
			if n := s.hub.Counters().Ended(sse.TransportSSE, sse.EndSlowConsumer); n != 1 {
				t.Fatalf("slow_consumer ends %d, want 1", n)
			}
		})
		t.Run("ws/"+mode, func(t *testing.T) {
			s := newServer(t, sse.WithQueueSize(queue), sse.WithGoroutines(goroutines), sse.WithHeartbeat(time.Hour))
			conn, r := stalledWS(t, s, 1)
			s.waitStreams(t, 1)
			taken := overflow(t, s, conn, r, 1, queue)
			var got []string
			for {
				f, err := ws.ReadFrame(r)
				if err != nil {
					t.Fatalf("after %q: %v (the connection was cut before a close frame)", got, err)
				}
				if f.Header.OpCode == ws.OpClose {
					code, reason := ws.ParseCloseFrameData(f.Payload)
					got = append(got, fmt.Sprintf("close %d %s", code, reason))
					break
				}
				got = append(got, fmt.Sprintf("%v %d", f.Header.OpCode, len(f.Payload)))
			}
			checkStalledRead(t, got, fmt.Sprintf("%v %d", ws.OpText, len(bigEvent().JSON())), func(i int64) string {
				return fmt.Sprintf("%v %d", ws.OpText, len(notification(i).JSON()))
			}, "close 1013 too slow; reconnect and resume", taken)
			s.waitStreams(t, 0)
			if n := s.hub.Counters().Ended(sse.TransportWS, sse.EndSlowConsumer); n != 1 {
				t.Fatalf("slow_consumer ends %d, want 1", n)
			}
		})
	}
}

// stallSource is a store whose Since waits at a barrier once armed: the
// test holds a stream's worker inside a catch-up.
type stallSource struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *stallSource) Head(context.Context, int64) (int64, error) { return 0, nil }

func (g *stallSource) Since(ctx context.Context, _, after int64, _ int) ([]*sse.Event, error) {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if !armed {
		return nil, nil
	}
	close(g.entered)
	select {
	case <-g.release:
		return []*sse.Event{notification(after + 1)}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestAbortBeforeBlockedWrite: a stream ended (here by the shutdown) while
// its worker was about to write to a client whose socket is full closes at
// once, not after the write timeout (10 s): the worker, held in a catch-up
// while the stream was aborted, then finds the socket full and must not
// wait for it. A client that never reads is not told (its socket cannot
// take the ending); it is closed a moment later.
func TestAbortBeforeBlockedWrite(t *testing.T) {
	defer sse.SetFinalTimeout(100 * time.Millisecond)()
	src := &stallSource{armed: true, entered: make(chan struct{}), release: make(chan struct{})}
	s := newServer(t, sse.WithSource(src), sse.WithHeartbeat(time.Hour))
	stalledSSE(t, s, 1)
	s.waitStreams(t, 1)
	if n := s.hub.Deliver(1, bigEvent()); n != 1 {
		t.Fatalf("the big event reached %d streams", n)
	}
	s.hub.Resync() // the worker reads the store, and waits there
	select {
	case <-src.entered:
	case <-time.After(wait):
		t.Fatal("the stream never read the store")
	}
	s.hub.Close() // aborts the stream: its worker is not writing yet
	close(src.release)
	start := time.Now()
	// Generous, and still short of the write timeout (10 s).
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v after %v; an aborted stream waited for its full socket", err, time.Since(start))
	}
	if n := s.hub.Counters().Ended(sse.TransportSSE, sse.EndShutdown); n != 1 {
		t.Fatalf("shutdown ends %d, want 1", n)
	}
}
