package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive the state machine and the hub through memConn, a
// connection that records what the stream writes and runs the stream's
// work only when the test says so, so each interleaving is chosen, not
// left to the scheduler. The real transports over real sockets are tested
// in engine_test.go and in handlers.

// memConn records a stream's bytes. With direct set it takes tryWrite
// (like a poller socket with room); blocked makes tryWrite refuse (a full
// socket) and write fail after a while (a stalled client).
type memConn struct {
	mu        sync.Mutex
	out       bytes.Buffer
	direct    bool
	blocked   bool
	scheduled int
	aborted   bool
	closed    bool
	final     []byte
}

func (c *memConn) tryWrite(b []byte) (bool, *End) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.direct || c.blocked || c.closed {
		return false, nil
	}
	c.out.Write(b)
	return true, nil
}

func (c *memConn) write(bufs [][]byte) *End {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocked || c.aborted {
		return EndWriteTimeout
	}
	for _, b := range bufs {
		c.out.Write(b)
	}
	return nil
}

func (c *memConn) schedule() {
	c.mu.Lock()
	c.scheduled++
	c.mu.Unlock()
}

func (c *memConn) abort() {
	c.mu.Lock()
	c.aborted = true
	c.mu.Unlock()
}

func (c *memConn) close(final []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.final = true, final
}

// messages parses what the stream wrote so far, and forgets it.
func (c *memConn) messages(t testing.TB) []Message {
	t.Helper()
	c.mu.Lock()
	b := bytes.Clone(c.out.Bytes())
	c.out.Reset()
	c.mu.Unlock()
	var out []Message
	r := NewReader(bytes.NewReader(b))
	for {
		m, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, m)
	}
}

// ids returns the ids of the events among msgs ("-" for events without one).
func ids(msgs []Message) string {
	var out []string
	for _, m := range msgs {
		if !m.Dispatched() {
			continue
		}
		if m.HasID {
			out = append(out, m.ID)
		} else {
			out = append(out, "-")
		}
	}
	return strings.Join(out, " ")
}

// memSource is a store in memory: each employee's events by seq.
type memSource struct {
	mu    sync.Mutex
	items map[int64][]*Event
	down  bool
	reads int
	// afterHead, if set, runs inside Head after the head was read: a
	// commit and its delivery landing in that window.
	afterHead func()
}

func (m *memSource) add(employee int64, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = map[int64][]*Event{}
	}
	for range n {
		seq := int64(len(m.items[employee]) + 1)
		m.items[employee] = append(m.items[employee], ev(seq))
	}
}

func (m *memSource) Head(_ context.Context, employee int64) (int64, error) {
	m.mu.Lock()
	if m.down {
		m.mu.Unlock()
		return 0, errors.New("store down")
	}
	head, after := int64(len(m.items[employee])), m.afterHead
	m.mu.Unlock()
	if after != nil {
		after()
	}
	return head, nil
}

func (m *memSource) Since(_ context.Context, employee, after int64, limit int) ([]*Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.down {
		return nil, errors.New("store down")
	}
	all := m.items[employee]
	if after >= int64(len(all)) {
		return nil, nil
	}
	return slices.Clone(all[after:min(int64(len(all)), after+int64(limit))]), nil
}

func (m *memSource) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

func ev(seq int64) *Event {
	return NewEvent(seq, "notification", fmt.Appendf(nil, `{"id":"%d"}`, seq))
}

// testHub returns a hub without the poller (memConn streams only).
func testHub(t testing.TB, opts ...Option) *Hub {
	t.Helper()
	h := NewHub(append([]Option{WithGoroutines(true)}, opts...)...)
	t.Cleanup(func() {
		// memConn streams end only when a test runs their work: do not wait.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return h
}

// open opens a stream on a memConn and runs its first work, as a
// transport does.
func open(t testing.TB, h *Hub, p Params) (*stream, *memConn) {
	t.Helper()
	if p.ExpiresAt.IsZero() {
		p.ExpiresAt = time.Now().Add(time.Hour)
	}
	s, err := h.open(context.Background(), p, sseFraming{})
	if err != nil {
		t.Fatalf("open employee %d: %v", p.Employee, err)
	}
	c := &memConn{direct: true}
	s.start(c)
	return s, c
}

func subscribe(t testing.TB, h *Hub, employee int64, roles ...string) (*stream, *memConn) {
	t.Helper()
	return open(t, h, Params{Employee: employee, Roles: roles})
}

// runWork runs the stream's work if it was scheduled, as the conn's
// goroutine would.
func runWork(s *stream, c *memConn) {
	c.mu.Lock()
	n := c.scheduled
	c.scheduled = 0
	c.mu.Unlock()
	if n > 0 {
		s.work()
	}
}

func TestFanOutAndIsolation(t *testing.T) {
	h := testHub(t)
	var tabs []*memConn
	for range 3 {
		_, c := subscribe(t, h, 1)
		tabs = append(tabs, c)
	}
	_, other := subscribe(t, h, 2)
	if n := h.Deliver(1, ev(1)); n != 3 {
		t.Fatalf("Deliver reached %d streams, want 3", n)
	}
	for i, c := range tabs {
		if got := ids(c.messages(t)); got != "1" {
			t.Fatalf("tab %d got %q, want event 1 written at once", i, got)
		}
	}
	if got := other.messages(t); len(got) != 0 {
		t.Fatalf("employee 2 received employee 1's events: %v", got)
	}
	if h.Deliver(3, ev(1)) != 0 {
		t.Fatal("a delivery to an employee without streams reached someone")
	}
}

// TestDirectWritesAndQueue: a live stream's in-order events are written by
// the delivering goroutine; when the socket is full they queue, in order,
// for the worker, which sends them once it runs.
func TestDirectWritesAndQueue(t *testing.T) {
	h := testHub(t)
	s, c := subscribe(t, h, 1)
	for i := int64(1); i <= 3; i++ {
		h.Deliver(1, ev(i))
	}
	if got := ids(c.messages(t)); got != "1 2 3" {
		t.Fatalf("direct writes = %q", got)
	}
	c.blocked = true
	for i := int64(4); i <= 6; i++ {
		h.Deliver(1, ev(i))
	}
	if got := c.messages(t); len(got) != 0 || c.scheduled != 1 {
		t.Fatalf("with the socket full: wrote %v, scheduled %d times; want nothing written, one wake-up", got, c.scheduled)
	}
	c.blocked = false
	runWork(s, c)
	if got := ids(c.messages(t)); got != "4 5 6" {
		t.Fatalf("the worker wrote %q, want the queue in order", got)
	}
	h.Deliver(1, ev(7))
	if got := ids(c.messages(t)); got != "7" {
		t.Fatalf("after the queue drained: %q, want direct writes again", got)
	}
}

func TestDeliverToRolesAllOnce(t *testing.T) {
	h := testHub(t)
	_, admin := subscribe(t, h, 1, "admin", "staff")
	_, staff := subscribe(t, h, 2, "staff")
	_, loner := subscribe(t, h, 3)
	if n := h.DeliverTo(Targets{Employees: []int64{1}, Roles: []string{"admin", "staff"}}, ev(0)); n != 2 {
		t.Fatalf("DeliverTo reached %d, want 2 (admin once, staff once)", n)
	}
	if len(admin.messages(t)) != 1 || len(staff.messages(t)) != 1 || len(loner.messages(t)) != 0 {
		t.Fatal("role targeting delivered wrongly")
	}
	if n := h.DeliverTo(Targets{All: true}, ev(0)); n != 3 {
		t.Fatalf("DeliverTo(all) reached %d, want 3", n)
	}
}

func TestDeliverFuncBuildsOnlyForConnected(t *testing.T) {
	h := testHub(t)
	_, a := subscribe(t, h, 1)
	_, b := subscribe(t, h, 1)
	built := 0
	build := func() *Event { built++; return ev(1) }
	if n := h.DeliverFunc(2, build); n != 0 || built != 0 {
		t.Fatalf("no stream of employee 2: reached %d, built %d; want 0, 0", n, built)
	}
	if n := h.DeliverFunc(1, build); n != 2 || built != 1 {
		t.Fatalf("two tabs of employee 1: reached %d, built %d; want 2 and one shared event", n, built)
	}
	if ids(a.messages(t)) != "1" || ids(b.messages(t)) != "1" {
		t.Fatal("the tabs did not get the event")
	}
	if got := fmt.Sprint(h.Connected([]int64{3, 1, 2})); got != "[1]" {
		t.Fatalf("Connected = %s, want [1]", got)
	}
	// A removed employee's streams have ended when CloseEmployee returns,
	// before their connections are closed: they no longer count.
	h.CloseEmployee(1)
	if got := fmt.Sprint(h.Connected([]int64{1})); got != "[]" {
		t.Fatalf("Connected after CloseEmployee = %s, want []", got)
	}
}

func TestLimits(t *testing.T) {
	h := testHub(t, WithMaxStreams(10), WithMaxInstanceStreams(12))
	var tabs []*stream
	for range 10 {
		s, _ := subscribe(t, h, 1)
		tabs = append(tabs, s)
	}
	if _, err := h.open(context.Background(), Params{Employee: 1}, sseFraming{}); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("11th stream of employee 1: err = %v, want ErrTooManyStreams", err)
	}
	subscribe(t, h, 2) // others are not affected
	subscribe(t, h, 3)
	if _, err := h.open(context.Background(), Params{Employee: 4}, sseFraming{}); !errors.Is(err, ErrInstanceFull) {
		t.Fatalf("13th stream of the instance: err = %v, want ErrInstanceFull", err)
	}
	tabs[0].stop(EndClient)
	tabs[0].work()
	subscribe(t, h, 1) // a closed tab frees its place
}

// TestQueueBound pins the queue's bound: a stream whose socket takes
// nothing holds exactly queueSize events, and the next one ends it as a
// slow consumer, without blocking the delivery.
func TestQueueBound(t *testing.T) {
	const size = 8
	h := testHub(t, WithQueueSize(size))
	slow, sc := subscribe(t, h, 1)
	_, fast := subscribe(t, h, 1)
	sc.blocked = true
	for i := int64(1); i <= size; i++ {
		if n := h.Deliver(1, ev(i)); n != 2 {
			t.Fatalf("event %d reached %d streams, want 2 (the slow one queues it)", i, n)
		}
	}
	if slow.end != nil {
		t.Fatalf("slow stream ended with %d queued, at its bound", size)
	}
	if n := h.Deliver(1, ev(size+1)); n != 1 {
		t.Fatalf("event beyond the bound reached %d streams, want 1", n)
	}
	if slow.end != EndSlowConsumer {
		t.Fatalf("slow stream end = %v, want EndSlowConsumer", slow.end)
	}
	if got := len(fast.messages(t)); got != size+1 {
		t.Fatalf("fast stream got %d events, want %d", got, size+1)
	}
	runWork(slow, sc)
	if !sc.closed || !bytes.Contains(sc.final, []byte(`"reason":"slow_consumer"`)) {
		t.Fatalf("slow stream closed=%v final %q; want closed with the reason", sc.closed, sc.final)
	}
	if n := h.Counters().Ended(TransportSSE, EndSlowConsumer); n != 1 {
		t.Fatalf("ended slow_consumer counted %d, want 1", n)
	}
}

func TestCloseEmployeeAndHub(t *testing.T) {
	h := testHub(t)
	a, ac := subscribe(t, h, 1)
	b, bc := subscribe(t, h, 2)
	h.CloseEmployee(1)
	runWork(a, ac)
	if a.end != EndRemoved || !ac.closed || !bytes.Contains(ac.final, []byte("event: closed\ndata: {\"reason\":\"employee_deleted\"}")) {
		t.Fatalf("removed employee's stream: end %v, closed %v, final %q", a.end, ac.closed, ac.final)
	}
	if b.end != nil {
		t.Fatal("CloseEmployee(1) ended employee 2's stream")
	}
	h.Close()
	runWork(b, bc)
	if b.end != EndShutdown || !bytes.Contains(bc.final, []byte(`{"reason":"shutdown"}`)) {
		t.Fatalf("stream on hub close: end %v, final %q", b.end, bc.final)
	}
	if _, err := h.open(context.Background(), Params{Employee: 3}, sseFraming{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("open after Close: %v, want ErrClosed", err)
	}
	h.Close() // twice is fine
	if n, _ := h.Stats(); n != 0 {
		t.Fatalf("%d streams registered after close", n)
	}
}

func TestStats(t *testing.T) {
	h := testHub(t)
	subscribe(t, h, 1)
	s, c := subscribe(t, h, 1)
	subscribe(t, h, 2)
	if streams, emps := h.Stats(); streams != 3 || emps != 2 {
		t.Fatalf("Stats = %d, %d; want 3 streams, 2 employees", streams, emps)
	}
	s.stop(EndClient)
	runWork(s, c)
	s.stop(EndClient) // twice is fine
	runWork(s, c)
	if streams, _ := h.Stats(); streams != 2 {
		t.Fatalf("after an end: %d streams, want 2", streams)
	}
	if n := h.Counters().Open(TransportSSE); n != 2 {
		t.Fatalf("open by transport = %d, want 2", n)
	}
}

// TestConcurrentChurn runs deliveries against streams that come and go,
// with real worker goroutines; under -race it checks the locking, and each
// stream sees strictly increasing seqs after its starting point.
func TestConcurrentChurn(t *testing.T) {
	h := testHub(t, WithQueueSize(1<<16))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				s, err := h.open(context.Background(), Params{Employee: int64(w % 2), Roles: []string{"r"}, ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{})
				if err != nil {
					t.Error(err)
					return
				}
				c := &goConn{memConn: memConn{direct: true}, s: s}
				s.start(c)
				time.Sleep(50 * time.Microsecond)
				s.stop(EndClient)
				c.wait()
				// Every event the stream wrote, across all its writes: a
				// run of consecutive seqs from wherever it joined (the
				// queue never fills, and there is no store to skip to).
				last := int64(0)
				for _, m := range c.messages(t) {
					if !m.HasID {
						continue
					}
					var seq int64
					fmt.Sscan(m.ID, &seq)
					if seq <= last || last > 0 && seq != last+1 {
						t.Errorf("seq %d after %d", seq, last)
					}
					last = seq
				}
			}
		}()
	}
	go func() {
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			h.Deliver(seq%2, ev(seq/2+1))
			h.DeliverTo(Targets{Roles: []string{"r"}}, ev(0))
		}
	}()
	wg.Wait()
	close(stop)
}

// goConn is a memConn whose work runs on goroutines, as the poller's does.
type goConn struct {
	memConn
	s       *stream
	running atomic.Int32
}

func (c *goConn) schedule() {
	c.running.Add(1)
	go func() {
		defer c.running.Add(-1)
		c.s.work()
	}()
}

// wait returns once the stream's connection is closed and no work runs.
func (c *goConn) wait() {
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed && c.running.Load() == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
