package sse

import (
	"bytes"

	"context"
	"github.com/gobwas/ws"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReplayThenLive: a resuming stream replays what was stored after its
// position, then continues live without a gap or a duplicate, whatever
// arrived while it replayed.
func TestReplayThenLive(t *testing.T) {
	src := &memSource{}
	src.add(1, 5)
	h := testHub(t, WithSource(src))
	s, err := h.open(context.Background(), Params{Employee: 1, After: 2, Resuming: true, ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.startID(); got != "2" {
		t.Fatalf("startID = %q, want the resume point 2", got)
	}
	// Delivered while the stream is opening: 5 was stored (and is replayed),
	// 6 is new; both queue, neither is written twice.
	src.add(1, 1)
	h.Deliver(1, ev(5))
	h.Deliver(1, ev(6))
	c := &memConn{direct: true}
	s.start(c)
	if got := ids(c.messages(t)); got != "3 4 5 6" {
		t.Fatalf("replay then queue = %q, want 3 4 5 6", got)
	}
	h.Deliver(1, ev(6)) // a late duplicate
	h.Deliver(1, ev(7))
	if got := ids(c.messages(t)); got != "7" {
		t.Fatalf("live after replay = %q, want 7 only", got)
	}
}

// TestRegisteredBeforeHead: a notification committed and delivered right
// after the stream read its starting position still reaches it. That holds
// only because the stream joins the hub before it reads the store.
func TestRegisteredBeforeHead(t *testing.T) {
	src := &memSource{}
	src.add(1, 2)
	h := testHub(t, WithSource(src))
	src.afterHead = func() {
		src.afterHead = nil
		src.add(1, 1)
		h.Deliver(1, ev(3))
	}
	_, c := open(t, h, Params{Employee: 1})
	if got := ids(c.messages(t)); got != "3" {
		t.Fatalf("got %q, want the event committed after the head was read", got)
	}
}

// TestResumeBeyondHead: a position past the newest seq (a database reset)
// starts at the newest instead of skipping what comes next.
func TestResumeBeyondHead(t *testing.T) {
	src := &memSource{}
	src.add(1, 2)
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1, After: 40, Resuming: true})
	if got := s.startID(); got != "2" {
		t.Fatalf("startID = %q, want 2", got)
	}
	h.Deliver(1, ev(3))
	if got := ids(c.messages(t)); got != "3" {
		t.Fatalf("got %q, want 3", got)
	}
}

func TestReplayTruncated(t *testing.T) {
	src := &memSource{}
	src.add(1, ReplayLimit+5)
	h := testHub(t, WithSource(src))
	_, c := open(t, h, Params{Employee: 1, After: 0, Resuming: true})
	msgs := c.messages(t)
	if len(msgs) != ReplayLimit+1 {
		t.Fatalf("%d messages, want %d replayed and replay_truncated", len(msgs), ReplayLimit)
	}
	last := msgs[len(msgs)-1]
	want := `{"latest":"` + strconv.Itoa(ReplayLimit+5) + `","next":"` + strconv.Itoa(ReplayLimit+1) + `","replayed":1000}`
	if last.Event != "replay_truncated" || last.ID != strconv.Itoa(ReplayLimit+5) || last.Data != want {
		t.Fatalf("last = %+v, want replay_truncated with id %d and %s", last, ReplayLimit+5, want)
	}
	if n := h.Counters().Truncated(); n != 1 {
		t.Fatalf("truncated counted %d, want 1", n)
	}
}

// TestGapFilledFromStore: a seq that arrives before an earlier one makes
// the stream read the missing ones first, in order.
func TestGapFilledFromStore(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 3)
	h.Deliver(1, ev(3)) // 1 and 2 never arrive live
	runWork(s, c)
	if got := ids(c.messages(t)); got != "1 2 3" {
		t.Fatalf("got %q, want 1 2 3", got)
	}
}

// TestGapWithStoreDownEnds: if the store cannot fill a gap, the stream ends
// (store_unavailable) rather than skip: the client resumes from 0.
func TestGapWithStoreDownEnds(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.setDown(true)
	h.Deliver(1, ev(2))
	runWork(s, c)
	if s.end != EndStore || !c.closed || !bytes.Contains(c.final, []byte(`"reason":"store_unavailable"`)) {
		t.Fatalf("end %v, final %q; want store_unavailable announced", s.end, c.final)
	}
	if got := c.messages(t); len(got) != 0 {
		t.Fatalf("wrote %v past the gap", got)
	}
}

// TestCatchUpRetried: a resync whose store read fails is retried with
// backoff until it succeeds; live events wait behind it rather than skip
// (issue: a failed catch-up was never retried).
func TestCatchUpRetried(t *testing.T) {
	src := &memSource{}
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	src.add(1, 2) // committed while deliveries were lost
	src.setDown(true)
	h.Resync()
	runWork(s, c)
	s.mu.Lock()
	due, retryAt := s.catchUp, s.retryAt
	s.mu.Unlock()
	if !due || retryAt <= nanotime() {
		t.Fatalf("after a failed catch-up: due=%v retryAt in %v; want it due later", due, time.Duration(retryAt-nanotime()))
	}
	if got := c.messages(t); len(got) != 0 {
		t.Fatalf("wrote %v while the store was down", got)
	}
	// Not yet due: the timer fires early and nothing is read.
	reads := src.reads
	s.onTimer(nanotime())
	if src.reads != reads || c.scheduled != 0 {
		t.Fatal("retried before its time")
	}
	src.setDown(false)
	h.clock = func() int64 { return retryAt }
	s.onTimer(retryAt) // the wheel fires it
	runWork(s, c)
	if got := ids(c.messages(t)); got != "1 2" {
		t.Fatalf("after the retry: %q, want 1 2", got)
	}
	if s.catchUp {
		t.Fatal("catch-up still due after it succeeded")
	}
}

// TestReplayWhenStoreComesBack: a resuming stream opened while the store
// was down keeps its position and replays once the store answers.
func TestReplayWhenStoreComesBack(t *testing.T) {
	src := &memSource{}
	src.add(1, 3)
	src.setDown(true)
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1, After: 1, Resuming: true})
	if got := s.startID(); got != "1" {
		t.Fatalf("startID = %q, want the resume point", got)
	}
	src.setDown(false)
	s.mu.Lock()
	retryAt := s.retryAt
	s.mu.Unlock()
	h.clock = func() int64 { return retryAt }
	s.onTimer(retryAt)
	runWork(s, c)
	if got := ids(c.messages(t)); got != "2 3" {
		t.Fatalf("got %q, want 2 3", got)
	}
}

// TestFreshConnectStoreDown: with the store down and no position, the
// first live event sets the position.
func TestFreshConnectStoreDown(t *testing.T) {
	src := &memSource{}
	src.setDown(true)
	h := testHub(t, WithSource(src))
	s, c := open(t, h, Params{Employee: 1})
	if got := s.startID(); got != "" {
		t.Fatalf("startID = %q, want none", got)
	}
	h.Deliver(1, ev(7))
	runWork(s, c)
	h.Deliver(1, ev(8))
	if got := ids(c.messages(t)); got != "7 8" {
		t.Fatalf("got %q, want 7 8", got)
	}
}

// TestTimers: the heartbeat goes out from the timer without waking a worker;
// the expiry and the maximum age end the stream with their own endings.
func TestTimers(t *testing.T) {
	h := testHub(t, WithHeartbeat(time.Hour))
	s, c := open(t, h, Params{Employee: 1, ExpiresAt: time.Now().Add(2 * time.Hour)})
	s.onTimer(s.nextBeat)
	msgs := c.messages(t)
	if len(msgs) != 1 || len(msgs[0].Comments) != 1 || msgs[0].Comments[0] != "heartbeat" || c.scheduled != 0 {
		t.Fatalf("heartbeat: %+v, scheduled %d; want one comment written from the timer", msgs, c.scheduled)
	}

	exp := time.Now().Add(time.Minute)
	s, c = open(t, h, Params{Employee: 2, ExpiresAt: exp})
	h.clock = func() int64 { return exp.UnixNano() }
	s.onTimer(exp.UnixNano())
	runWork(s, c)
	if s.end != EndTokenExpired || !strings.HasPrefix(string(c.final), "event: token_expired\ndata: {\"code\":\"token_expired\"") {
		t.Fatalf("expiry: end %v, final %q", s.end, c.final)
	}

	h = testHub(t, WithMaxAge(time.Hour))
	s, c = open(t, h, Params{Employee: 3, ExpiresAt: time.Now().Add(2 * time.Hour)})
	if age := time.Duration(s.maxAgeAt - nanotime()); age < 47*time.Minute || age > 73*time.Minute {
		t.Fatalf("max age %v, want 1h ± 20%%", age)
	}
	h.clock = func() int64 { return s.maxAgeAt }
	s.onTimer(s.maxAgeAt)
	runWork(s, c)
	if s.end != EndMaxAge || string(c.final) != "event: closed\ndata: {\"reason\":\"max_age\"}\n\n" {
		t.Fatalf("max age: end %v, final %q", s.end, c.final)
	}
}

// TestWheel: timers fire at or after their time, in the tick that covers
// it; cancelled ones never; ones beyond a turn of the wheel wait their turn.
func TestWheel(t *testing.T) {
	tick := int64(5 * time.Millisecond)
	start := nanotime()
	w := &wheel{tick: tick, last: start / tick}
	s := make([]*stream, 4)
	for i := range s {
		s[i] = &stream{wslot: -1}
	}
	w.schedule(s[0], start+20*int64(time.Millisecond))
	w.schedule(s[1], start+40*int64(time.Millisecond))
	w.schedule(s[2], start+60*int64(time.Millisecond))
	w.schedule(s[3], start+int64(wheelSlots+3)*tick) // more than a turn away
	w.cancel(s[1])
	if got := w.expire(start+19*int64(time.Millisecond), nil); len(got) != 0 {
		t.Fatalf("fired %d timers before their time", len(got))
	}
	got := w.expire(start+int64(wheelSlots)*tick, nil)
	if len(got) != 2 || got[0] != s[0] && got[1] != s[0] || got[0] != s[2] && got[1] != s[2] {
		t.Fatalf("after a turn fired %v, want s0 and s2", got)
	}
	if s[3].wslot < 0 {
		t.Fatal("a timer beyond the turn fired early")
	}
	if got := w.expire(start+int64(wheelSlots+4)*tick, nil); len(got) != 1 || got[0] != s[3] {
		t.Fatalf("on its turn fired %v, want s3", got)
	}
}

// TestWSDeadPeer: a WebSocket client that leaves pings unanswered for the
// allowed silence (a heartbeat, at least 5 s) is dropped; any frame from it
// answers. Driven by the hub's clock, not by waiting.
func TestWSDeadPeer(t *testing.T) {
	h := testHub(t, WithHeartbeat(time.Second))
	start := nanotime()
	now := start
	h.clock = func() int64 { return now }
	s, c := open(t, h, Params{Employee: 1, ExpiresAt: time.Now().Add(time.Hour)})
	s.ws = &wsState{}
	tick := func(d time.Duration) {
		now += int64(d)
		s.onTimer(now)
		runWork(s, c)
	}
	tick(time.Second) // the first ping
	for range 3 {
		tick(time.Second) // unanswered, but within the allowed silence
	}
	if s.end != nil {
		t.Fatalf("ended after 4 s of silence: %v", s.end)
	}
	s.ws.feed(s, appendMaskedFrame(nil, opPong)) // the client answers
	for range 5 {
		tick(time.Second) // a new first ping, then four unanswered seconds
	}
	if s.end != nil {
		t.Fatalf("ended although the client answered: %v", s.end)
	}
	tick(time.Second) // 5 s since the first ping after the answer
	if s.end != EndDeadPeer || !c.closed {
		t.Fatalf("end %v, closed %v; want dead_peer", s.end, c.closed)
	}
}

// appendMaskedFrame appends an empty masked client frame.
func appendMaskedFrame(dst []byte, op ws.OpCode) []byte {
	return append(dst, 0x80|byte(op), 0x80, 1, 2, 3, 4)
}
