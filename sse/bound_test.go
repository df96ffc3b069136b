package sse

import (
	"context"
	"testing"
	"time"
)

// TestDefaultQueueBound pins the default queue size the README promises
// (256 events) and that a hub without WithQueueSize uses it: exactly 256
// events wait for a stream whose socket takes nothing; the 257th ends it as
// a slow consumer.
func TestDefaultQueueBound(t *testing.T) {
	if DefaultQueueSize != 256 {
		t.Fatalf("DefaultQueueSize = %d; the README says 256", DefaultQueueSize)
	}
	h := testHub(t)
	s, c := subscribe(t, h, 1)
	c.blocked = true
	for i := int64(1); i <= 256; i++ {
		if n := h.Deliver(1, ev(i)); n != 1 {
			t.Fatalf("event %d not taken (queue bound below 256)", i)
		}
	}
	s.mu.Lock()
	queued, end := len(s.queue), s.end
	s.mu.Unlock()
	if queued != 256 || end != nil {
		t.Fatalf("after 256 events: %d queued, end %v; want 256 queued and open", queued, end)
	}
	if n := h.Deliver(1, ev(257)); n != 0 {
		t.Fatal("the 257th event was taken (queue bound above 256)")
	}
	if s.end != EndSlowConsumer {
		t.Fatalf("end %v, want slow_consumer", s.end)
	}
}

// TestStoreRetryBackoff: a replay whose store read keeps failing is retried
// after 1 s, 2 s, 4 s … at most 30 s after each failure, on the hub's
// clock; a success resets the backoff.
func TestStoreRetryBackoff(t *testing.T) {
	src := &memSource{}
	src.add(1, 3)
	src.setDown(true)
	h := testHub(t, WithSource(src))
	now := nanotime()
	h.clock = func() int64 { return now }
	s, c := open(t, h, Params{Employee: 1, After: 1, Resuming: true})
	retryIn := func() time.Duration {
		s.mu.Lock()
		defer s.mu.Unlock()
		return time.Duration(s.retryAt - now)
	}
	for i, want := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30} {
		if got := retryIn(); got != want*time.Second {
			t.Fatalf("after failure %d: retry in %v, want %v", i+1, got, want*time.Second)
		}
		now = s.retryAt
		s.onTimer(now)
		runWork(s, c)
	}
	src.setDown(false)
	now = s.retryAt
	s.onTimer(now)
	runWork(s, c)
	if got := ids(c.messages(t)); got != "2 3" {
		t.Fatalf("after the store came back: %q, want 2 3", got)
	}
	s.mu.Lock()
	failures, replay := s.failures, s.replay
	s.mu.Unlock()
	if failures != 0 || replay {
		t.Fatalf("after a success: failures %d, replay due %v; want the backoff reset", failures, replay)
	}
}

// TestWheelTick: the timer wheel's resolution is a tenth of the heartbeat,
// between 5 ms and 100 ms.
func TestWheelTick(t *testing.T) {
	for _, tt := range []struct{ heartbeat, want time.Duration }{
		{15 * time.Second, 100 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
		{999 * time.Millisecond, 99900 * time.Microsecond},
		{500 * time.Millisecond, 50 * time.Millisecond},
		{50 * time.Millisecond, 5 * time.Millisecond},
		{10 * time.Millisecond, 5 * time.Millisecond},
	} {
		if got := wheelTick(tt.heartbeat); got != tt.want {
			t.Errorf("wheelTick(%v) = %v, want %v", tt.heartbeat, got, tt.want)
		}
	}
}

// TestOptionDefaults: zero or negative settings keep the documented
// defaults; positive ones are taken as given.
func TestOptionDefaults(t *testing.T) {
	h := testHub(t, WithQueueSize(0), WithMaxStreams(-1), WithMaxInstanceStreams(0), WithHeartbeat(0), WithMaxAge(-time.Second))
	if h.queueSize != DefaultQueueSize || h.maxStreams != DefaultMaxStreams || h.maxTotal != DefaultMaxInstanceStreams ||
		h.heartbeat != DefaultHeartbeat || h.maxAge != 0 {
		t.Fatalf("zero options: queue %d, streams %d, total %d, heartbeat %v, max age %v; want the defaults",
			h.queueSize, h.maxStreams, h.maxTotal, h.heartbeat, h.maxAge)
	}
	h = testHub(t, WithQueueSize(1), WithMaxStreams(1), WithMaxInstanceStreams(1), WithHeartbeat(time.Nanosecond), WithMaxAge(time.Nanosecond))
	if h.queueSize != 1 || h.maxStreams != 1 || h.maxTotal != 1 || h.heartbeat != time.Nanosecond || h.maxAge != time.Nanosecond {
		t.Fatalf("smallest positive options not taken: %d %d %d %v %v", h.queueSize, h.maxStreams, h.maxTotal, h.heartbeat, h.maxAge)
	}
}

// TestRoleRoomsAfterEnd: when one of a role's streams ends, the others
// still get the role's deliveries, and the last one leaving empties the
// role's room.
func TestRoleRoomsAfterEnd(t *testing.T) {
	h := testHub(t)
	a, ac := subscribe(t, h, 1, "r")
	b, bc := subscribe(t, h, 2, "r")
	a.stop(EndClient)
	runWork(a, ac)
	if n := h.DeliverTo(Targets{Roles: []string{"r"}}, ev(0)); n != 1 || len(bc.messages(t)) != 1 {
		t.Fatalf("after one of two role streams ended: reached %d, want the other one", n)
	}
	h.CloseEmployee(2)
	runWork(b, bc)
	for _, s := range h.snapshot(nil) {
		t.Fatalf("stream of %d still registered", s.employee)
	}
	h.mu.RLock()
	rooms := len(h.roles)
	h.mu.RUnlock()
	if rooms != 0 {
		t.Fatalf("%d role rooms left after every stream ended, want 0", rooms)
	}
}

// TestShutdownWaits: Shutdown waits for streams to close, and says so when
// its context ends first.
func TestShutdownWaits(t *testing.T) {
	h := NewHub(WithGoroutines(true))
	s, c := open(t, h, Params{Employee: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned while a stream was still open")
	}
	runWork(s, c) // the stream's worker closes it
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown once every stream closed: %v", err)
	}
}

// TestEphemeralKeepsPosition: an event outside the sequence (ephemeral,
// state) written straight to a live stream leaves its position alone: the
// next notification follows without a store read or a duplicate.
func TestEphemeralKeepsPosition(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 2)
	h.Deliver(1, ev(1))
	h.Deliver(1, ev(0))
	h.Deliver(1, ev(2))
	runWork(s, c)
	if got := ids(c.messages(t)); got != "1 - 2" {
		t.Fatalf("got %q, want 1 - 2", got)
	}
}

// TestMaxAgeJitter: streams end within ±20% of the maximum age, spread
// over that whole range.
func TestMaxAgeJitter(t *testing.T) {
	h := testHub(t, WithMaxAge(time.Hour), WithMaxStreams(1000))
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for range 300 {
		s, _ := subscribe(t, h, 1)
		age := time.Duration(s.maxAgeAt - nanotime())
		lo, hi = min(lo, age), max(hi, age)
	}
	if lo < 47*time.Minute || hi > 73*time.Minute || lo > 51*time.Minute || hi < 69*time.Minute {
		t.Fatalf("max ages from %v to %v; want them spread over 48 to 72 min", lo, hi)
	}
}

// TestNewStreamNotInWheel: a stream that was never scheduled is in no
// slot of the timer wheel, so taking it out (it ends before its first
// timer) cannot unlink other streams' timers.
func TestNewStreamNotInWheel(t *testing.T) {
	h := testHub(t)
	tick := int64(5 * time.Millisecond)
	w := &wheel{tick: tick, last: 0}
	for slot := int64(0); slot < 4; slot++ {
		other := &stream{wslot: -1}
		w.schedule(other, slot*tick)
	}
	before := w.slots
	s, err := h.open(context.Background(), Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{})
	if err != nil {
		t.Fatal(err)
	}
	if s.wslot >= 0 {
		t.Fatalf("a new stream is in wheel slot %d", s.wslot)
	}
	w.cancel(s)
	if w.slots != before {
		t.Fatal("cancelling a never-scheduled stream changed the wheel")
	}
	s.abandon()
}
