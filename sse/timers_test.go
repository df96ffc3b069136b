package sse

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests pin the state machine's boundaries: a timer or retry fires at
// its exact time, not a nanosecond later or earlier; a store read pages on
// exactly ReplayLimit. Each drives the hub's clock and the stream by hand.

// TestStoreRetryAtItsTime: a replay waiting for the store is read at its
// retry time exactly, not a moment before.
func TestStoreRetryAtItsTime(t *testing.T) {
	src := &memSource{}
	src.add(1, 3)
	src.setDown(true)
	h := testHub(t, WithSource(src), WithHeartbeat(time.Hour))
	now := nanotime()
	h.clock = func() int64 { return now }
	s, c := open(t, h, Params{Employee: 1, After: 1, Resuming: true})
	src.setDown(false)
	reads := src.reads
	now = s.retryAt - 1
	if end := s.step(nil); end != nil || src.reads != reads {
		t.Fatalf("1 ns before the retry: end %v, %d store reads; want none", end, src.reads-reads)
	}
	now = s.retryAt
	if end := s.step(nil); end != nil || src.reads != reads+1 {
		t.Fatalf("at the retry time: end %v, %d store reads; want 1", end, src.reads-reads)
	}
	if got := ids(c.messages(t)); got != "2 3" {
		t.Fatalf("replayed %q, want 2 3", got)
	}
}

// TestTimerBeatBoundaries: the timer writes a heartbeat alone when only the
// heartbeat is due: one nanosecond before it nothing happens (the timer is
// set again), at it the heartbeat goes out and the next is a heartbeat
// later; when the token expires at the same moment the stream ends instead.
func TestTimerBeatBoundaries(t *testing.T) {
	const hb = time.Minute
	h := testHub(t, WithHeartbeat(hb))
	s, c := open(t, h, Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)})
	beat := s.nextBeat
	s.onTimer(beat - 1)
	if msgs := c.messages(t); len(msgs) != 0 || c.scheduled != 0 || s.nextBeat != beat || s.wdue != beat {
		t.Fatalf("1 ns early: wrote %v, scheduled %d, next beat moved by %v, timer at %v; want nothing, timer kept",
			msgs, c.scheduled, time.Duration(s.nextBeat-beat), time.Duration(s.wdue-beat))
	}
	s.onTimer(beat)
	if msgs := c.messages(t); len(msgs) != 1 || len(msgs[0].Comments) != 1 || c.scheduled != 0 {
		t.Fatalf("at the beat: wrote %+v, scheduled %d; want one heartbeat from the timer", msgs, c.scheduled)
	}
	if s.nextBeat != beat+int64(hb) || s.wdue != beat+int64(hb) {
		t.Fatalf("next beat in %v, timer in %v; want both a heartbeat later",
			time.Duration(s.nextBeat-beat), time.Duration(s.wdue-beat))
	}

	// The token expires exactly at a heartbeat: it ends the stream.
	exp := time.Now().Add(time.Hour)
	s, c = open(t, h, Params{Employee: 2, ExpiresAt: exp})
	s.nextBeat = exp.UnixNano()
	h.clock = func() int64 { return exp.UnixNano() }
	s.onTimer(exp.UnixNano())
	runWork(s, c)
	if s.end != EndTokenExpired || len(c.messages(t)) != 0 {
		t.Fatalf("expiry at a heartbeat: end %v; want token_expired and no heartbeat", s.end)
	}
	h.clock = nil

	// The maximum age reached exactly at a heartbeat: the same.
	h = testHub(t, WithHeartbeat(hb), WithMaxAge(time.Hour))
	s, c = open(t, h, Params{Employee: 3, ExpiresAt: time.Now().Add(2 * time.Hour)})
	s.nextBeat = s.maxAgeAt
	h.clock = func() int64 { return s.maxAgeAt }
	s.onTimer(s.maxAgeAt)
	runWork(s, c)
	if s.end != EndMaxAge || len(c.messages(t)) != 0 {
		t.Fatalf("maximum age at a heartbeat: end %v; want max_age and no heartbeat", s.end)
	}
}

// TestTimerBeatWhenSocketFull: a heartbeat the socket cannot take at once
// is left to the worker, which writes it and sets the next.
func TestTimerBeatWhenSocketFull(t *testing.T) {
	const hb = time.Minute
	h := testHub(t, WithHeartbeat(hb))
	s, c := open(t, h, Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)})
	c.direct = false // tryWrite refuses; write works
	beat := s.nextBeat
	h.clock = func() int64 { return beat }
	s.onTimer(beat)
	if c.scheduled != 1 || s.nextBeat != beat {
		t.Fatalf("scheduled %d, next beat moved by %v; want the worker woken, the beat still due", c.scheduled, time.Duration(s.nextBeat-beat))
	}
	runWork(s, c)
	if msgs := c.messages(t); len(msgs) != 1 || len(msgs[0].Comments) != 1 || msgs[0].Comments[0] != "heartbeat" {
		t.Fatalf("the worker wrote %+v, want one heartbeat", msgs)
	}
	if s.nextBeat != beat+int64(hb) {
		t.Fatalf("next beat in %v, want %v", time.Duration(s.nextBeat-beat), hb)
	}
}

// TestTimerWhileWorking: a timer that fires while a worker runs only tells
// it to look again; an expiry at that moment ends the stream at once and
// aborts the worker's write (it may be blocked on a stalled client).
func TestTimerWhileWorking(t *testing.T) {
	h := testHub(t, WithHeartbeat(time.Minute))
	s, c := open(t, h, Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)})
	c.direct = false
	h.Deliver(1, ev(1)) // queued: a worker is due
	if !s.working || c.scheduled != 1 {
		t.Fatalf("working %v, scheduled %d; want a worker", s.working, c.scheduled)
	}
	s.onTimer(s.nextBeat)
	if !s.again || c.scheduled != 1 || len(c.messages(t)) != 0 || s.end != nil {
		t.Fatalf("again %v, scheduled %d, end %v; want the running worker told, nothing else", s.again, c.scheduled, s.end)
	}
	s.onTimer(s.expiresAt - 1)
	if s.end != nil || c.aborted {
		t.Fatalf("1 ns before the expiry: end %v, aborted %v", s.end, c.aborted)
	}
	s.onTimer(s.expiresAt)
	if s.end != EndTokenExpired || !c.aborted {
		t.Fatalf("expiry while working: end %v, aborted %v; want token_expired and the write aborted", s.end, c.aborted)
	}
	runWork(s, c)
	if !c.closed || !strings.HasPrefix(string(c.final), "event: token_expired\n") {
		t.Fatalf("closed %v with %q; want token_expired", c.closed, c.final)
	}
}

// TestGapBeyondStore: a live event past a gap that the store fills only in
// part (it is committed, but not yet readable here) follows what the store
// had, once.
func TestGapBeyondStore(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 2)
	h.Deliver(1, ev(4)) // 3 is not in the store yet either
	runWork(s, c)
	if got := ids(c.messages(t)); got != "1 2 4" {
		t.Fatalf("got %q, want 1 2 4", got)
	}
	if s.cursor != 4 {
		t.Fatalf("position %d, want 4", s.cursor)
	}
}

// TestCatchUpPages: a catch-up reads every page, however many (not only
// the replay's first ReplayLimit), and announces no truncation.
func TestCatchUpPages(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 2*ReplayLimit+1)
	h.Resync()
	runWork(s, c)
	msgs := c.messages(t)
	if len(msgs) != 2*ReplayLimit+1 || msgs[len(msgs)-1].ID != strconv.Itoa(2*ReplayLimit+1) {
		t.Fatalf("caught up %d events, want %d", len(msgs), 2*ReplayLimit+1)
	}
	for i, m := range msgs {
		if m.Event != "notification" || m.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d: %s %s", i, m.Event, m.ID)
		}
	}
	if n := h.Counters().Truncated(); n != 0 {
		t.Fatalf("truncated counted %d, want 0", n)
	}
}

// TestCatchUpExactPage: a catch-up whose first page is exactly full reads
// the next one.
func TestCatchUpExactPage(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, ReplayLimit+1)
	h.Resync()
	runWork(s, c)
	if msgs := c.messages(t); len(msgs) != ReplayLimit+1 {
		t.Fatalf("caught up %d events, want %d", len(msgs), ReplayLimit+1)
	}
}

// TestReplayExactLimit: a replay of exactly ReplayLimit events is whole:
// no replay_truncated.
func TestReplayExactLimit(t *testing.T) {
	src := &memSource{}
	src.add(1, ReplayLimit)
	h := testHub(t, WithSource(src))
	_, c := open(t, h, Params{Employee: 1, After: 0, Resuming: true})
	msgs := c.messages(t)
	if len(msgs) != ReplayLimit || msgs[len(msgs)-1].Event != "notification" {
		t.Fatalf("%d messages, last %+v; want %d notifications", len(msgs), msgs[len(msgs)-1].Event, ReplayLimit)
	}
	if n := h.Counters().Truncated(); n != 0 {
		t.Fatalf("truncated counted %d, want 0", n)
	}
}

// TestTimerBeatBesideStoreRetry: a heartbeat due before a pending store
// retry goes out from the timer alone; one due at the retry's exact time
// wakes the worker, which reads the store too.
func TestTimerBeatBesideStoreRetry(t *testing.T) {
	src := &memSource{}
	src.add(1, 3)
	src.setDown(true)
	h := testHub(t, WithSource(src), WithHeartbeat(time.Hour))
	s, c := open(t, h, Params{Employee: 1, After: 1, Resuming: true})
	src.setDown(false)
	reads := src.reads
	s.nextBeat = s.retryAt - 1
	s.onTimer(s.retryAt - 1)
	if msgs := c.messages(t); len(msgs) != 1 || len(msgs[0].Comments) != 1 || c.scheduled != 0 || src.reads != reads {
		t.Fatalf("a beat before the retry: wrote %+v, scheduled %d, %d reads; want the heartbeat from the timer alone", msgs, c.scheduled, src.reads-reads)
	}
	s.nextBeat = s.retryAt
	s.onTimer(s.retryAt)
	if c.scheduled != 1 || len(c.messages(t)) != 0 {
		t.Fatalf("a beat at the retry: scheduled %d; want the worker woken", c.scheduled)
	}
}

// failConn is a memConn whose socket has failed: tryWrite reports end.
type failConn struct {
	memConn
	end *End
}

func (c *failConn) tryWrite([]byte) (bool, *End) { return false, c.end }

// TestTimerBeatOnFailedSocket: a heartbeat that finds the socket failed
// ends the stream with that failure at once.
func TestTimerBeatOnFailedSocket(t *testing.T) {
	h := testHub(t, WithHeartbeat(time.Minute))
	s, err := h.open(t.Context(), Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{})
	if err != nil {
		t.Fatal(err)
	}
	c := &failConn{end: EndDeadPeer}
	s.start(c)
	s.onTimer(s.nextBeat)
	if s.end != EndDeadPeer {
		t.Fatalf("end %v, want dead_peer from the failed write", s.end)
	}
	s.work()
	if !c.closed {
		t.Fatal("not closed")
	}
	if n := h.Counters().Ended(TransportSSE, EndDeadPeer); n != 1 {
		t.Fatalf("dead_peer ends %d, want 1", n)
	}
}

// TestDuplicateInQueue: an event queued twice is written once, and the
// second copy (at the position exactly) is not taken for a gap: no store
// read.
func TestDuplicateInQueue(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 1)
	c.direct = false
	h.Deliver(1, ev(1))
	h.Deliver(1, ev(1))
	reads := src.reads
	runWork(s, c)
	if got := ids(c.messages(t)); got != "1" || src.reads != reads {
		t.Fatalf("wrote %q with %d store reads; want 1 once, no read", got, src.reads-reads)
	}
}

// TestAbandonUncounts: a stream whose connection could not be set up
// leaves the rooms and the open-streams gauge.
func TestAbandonUncounts(t *testing.T) {
	h := testHub(t)
	s, err := h.open(t.Context(), Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)}, wsFraming{})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.Counters().Open(TransportWS); n != 1 {
		t.Fatalf("open %d after open, want 1", n)
	}
	s.abandon()
	if n, _ := h.Stats(); n != 0 || h.Counters().Open(TransportWS) != 0 {
		t.Fatalf("after abandon: %d streams, open gauge %d; want 0 and 0", n, h.Counters().Open(TransportWS))
	}
}
