package sse

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// truncatedEvent names the event that says a replay was cut short.
const truncatedEvent = "replay_truncated"

// Source is where streams read what was stored: the store, through an
// adapter that encodes its items as events (handlers does).
type Source interface {
	// Head returns the employee's newest seq (0 when none).
	Head(ctx context.Context, employee int64) (int64, error)
	// Since returns up to limit events with seq > after, oldest first.
	Since(ctx context.Context, employee, after int64, limit int) ([]*Event, error)
}

// Params describe a stream to open, from its authenticated request.
type Params struct {
	Employee  int64
	Roles     []string
	ExpiresAt time.Time
	// After is where the client resumes (Last-Event-ID or lastEventId),
	// when Resuming.
	After    int64
	Resuming bool
}

// conn is how a stream's bytes reach its client and how its work gets a
// goroutine. There are three: a taken-over socket on the poller (fdConn),
// a taken-over connection served by a goroutine of its own (TLS: netConn),
// and a net/http response (HTTP/2, HTTP/1.0: httpConn).
type conn interface {
	// write writes bufs in order, blocking until the client has taken them
	// or the write deadline passes. Only the stream's worker calls it.
	write(bufs [][]byte) *End
	// tryWrite writes b without blocking, keeping whatever the socket
	// cannot take yet to send later. It returns false, having written
	// nothing, when this conn cannot write now (it has no poller, or bytes
	// are already waiting): the caller queues instead. b must not change.
	tryWrite(b []byte) (ok bool, end *End)
	// schedule makes the stream's work run on a goroutine.
	schedule()
	// abort makes a blocked write return now (the stream has ended).
	abort()
	// close writes final (best effort, briefly) and closes the connection.
	close(final []byte)
}

// stream is one open stream: its place in the hub's rooms, its bounded
// queue, its position in the employee's sequence, its timers and its
// connection. One worker at a time runs its state machine (work); events
// that can go out at once are written straight from the delivering
// goroutine (offer).
type stream struct {
	hub       *Hub
	employee  int64
	roles     []string
	f         framing
	c         conn
	ws        *wsState // WebSocket transports: what the client sent; nil for SSE
	expiresAt int64    // the token's exp, Unix nanoseconds
	maxAgeAt  int64    // when MAX_STREAM_AGE ends the stream; 0 never

	mu       sync.Mutex // guards every field below
	queue    []*Event
	cursor   int64 // the highest seq the client has, when known
	known    bool  // false only for a fresh connect while the store was down
	replay   bool  // the connect's replay is due (store down at connect, or not done yet)
	catchUp  bool  // read everything after the cursor (a resync, a failed catch-up)
	retryAt  int64 // when a failed replay or catch-up is tried again
	failures uint8 // consecutive failed store reads, for the backoff
	working  bool  // a worker owns the stream; offers queue
	again    bool  // something arrived while working
	end      *End  // why the stream ended, once it has
	finished bool  // finish ran
	nextBeat int64

	// Timer wheel links, guarded by the wheel's lock.
	wnext, wprev *stream
	wdue         int64
	wslot        int32
}

func nanotime() int64 { return time.Now().UnixNano() }

// now is the hub's clock (Unix nanoseconds); tests may set clock.
func (h *Hub) now() int64 {
	if h.clock != nil {
		return h.clock()
	}
	return nanotime()
}

// open registers a stream and works out where it starts. The stream is
// registered before the store is read, so nothing committed after its
// starting point can be missed: it is either read from the store or in the
// queue. The caller owns the stream (working) until start or abandon.
func (h *Hub) open(ctx context.Context, p Params, f framing) (*stream, error) {
	now := h.now()
	s := &stream{
		hub: h, employee: p.Employee, roles: p.Roles, f: f,
		expiresAt: p.ExpiresAt.UnixNano(), working: true, wslot: -1,
		nextBeat: now + int64(h.heartbeat),
	}
	if h.maxAge > 0 {
		jitter := 0.8 + 0.4*rand.Float64()
		s.maxAgeAt = now + int64(float64(h.maxAge)*jitter)
	}
	if err := h.register(s); err != nil {
		return nil, err
	}
	h.stats.opened[f.transport()].Add(1)
	h.stats.open[f.transport()].Add(1)
	s.locate(ctx, p)
	return s, nil
}

// locate sets the starting position: the resume point, but never beyond the
// newest stored seq (a client from before a database reset would otherwise
// skip everything new), or the newest seq for a fresh connect. When the
// store is down, a resuming stream keeps its resume point and replays when
// the store answers; a fresh one takes its position from its first live
// event.
func (s *stream) locate(ctx context.Context, p Params) {
	if s.hub.source == nil {
		s.known = true
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	head, err := s.hub.source.Head(ctx, s.employee)
	if err != nil {
		s.hub.log.Warn("stream opened while the store is down; it catches up later", "employee", s.employee, "err", err)
		s.cursor, s.known, s.replay = p.After, p.Resuming, p.Resuming
		return
	}
	s.known = true
	s.cursor = head
	if p.Resuming && p.After < head {
		s.cursor, s.replay = p.After, true
	}
}

// startID is the position the stream starts from, sent in its first bytes
// so that a client whose stream drops before any event still resumes from
// there. Empty when the store was down and the position is unknown.
func (s *stream) startID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		return ""
	}
	return strconv.FormatInt(s.cursor, 10)
}

// start hands the opened stream to its connection: it runs the first work
// (the replay, what queued meanwhile) on the caller's goroutine, then
// releases the stream to the timers and deliveries. It reports whether the
// stream is still open.
func (s *stream) start(c conn) bool {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
	return !s.work()
}

// abandon unregisters a stream whose connection could not be set up;
// nothing reached the client.
func (s *stream) abandon() {
	s.hub.unregister(s)
	s.hub.stats.open[s.f.transport()].Add(-1)
}

// offer hands ev to the stream without blocking. On a live stream with
// nothing waiting, an event next in sequence (or outside it) is written at
// once; otherwise it is queued for the worker. A full queue ends the stream
// (EndSlowConsumer). It reports whether the stream took the event.
func (s *stream) offer(ev *Event) bool {
	s.mu.Lock()
	if s.end != nil {
		s.mu.Unlock()
		return false
	}
	if !s.working && len(s.queue) == 0 && s.liveLocked() {
		if ev.Seq > 0 && ev.Seq <= s.cursor {
			s.mu.Unlock()
			return true // already sent (replayed or caught up)
		}
		if ev.Seq == 0 || ev.Seq == s.cursor+1 {
			ok, end := s.c.tryWrite(s.f.event(ev))
			if ok {
				if ev.Seq > 0 {
					s.cursor = ev.Seq
				}
				s.mu.Unlock()
				s.hub.stats.sent[s.f.transport()].Add(1)
				if s.hub.written != nil && stored(ev) {
					s.hub.written(s.employee, ev.Seq, ev.Seq)
				}
				return true
			}
			if end != nil {
				s.stopLocked(end)
				return false
			}
		}
	}
	if len(s.queue) >= s.hub.queueSize {
		s.stopLocked(EndSlowConsumer)
		return false
	}
	s.queue = append(s.queue, ev)
	s.kickLocked()
	return true
}

// open reports whether the stream has not ended. An ended stream stays in
// the hub's rooms until its connection is closed.
func (s *stream) open() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end == nil
}

// liveLocked reports whether the stream's position is settled, so an
// event can go out without reading the store first.
func (s *stream) liveLocked() bool { return s.known && !s.replay && !s.catchUp }

// kickLocked makes the worker run, and unlocks s.mu. A running worker is
// told to look again instead.
func (s *stream) kickLocked() {
	if s.working {
		s.again = true
		s.mu.Unlock()
		return
	}
	s.working = true
	c := s.c
	s.mu.Unlock()
	c.schedule()
}

// stop ends the stream for end; its worker closes the connection.
func (s *stream) stop(end *End) {
	s.mu.Lock()
	s.stopLocked(end)
}

// stopLocked ends the stream (once) and unlocks s.mu.
func (s *stream) stopLocked(end *End) {
	if s.end != nil {
		s.mu.Unlock()
		return
	}
	s.end, s.queue = end, nil
	c := s.c
	if c != nil && s.working {
		// A worker may be blocked writing to a stalled client.
		defer c.abort()
	}
	s.kickLocked()
}

// resume lets the worker write what queued while the socket was full.
func (s *stream) resume() {
	s.mu.Lock()
	if s.end != nil || len(s.queue) == 0 {
		s.mu.Unlock()
		return
	}
	s.kickLocked()
}

// requestCatchUp makes the stream read everything after its position from
// the store (deliveries may have been missed).
func (s *stream) requestCatchUp() {
	s.mu.Lock()
	if s.end != nil {
		s.mu.Unlock()
		return
	}
	s.catchUp, s.retryAt = true, 0
	s.kickLocked()
}

// work runs the state machine until nothing is due, on whatever goroutine
// the connection gives it; one at a time (working). It returns true once
// the stream has finished and its connection is closed.
func (s *stream) work() (finished bool) {
	for {
		s.mu.Lock()
		if s.end != nil {
			s.mu.Unlock()
			s.finish()
			return true
		}
		evs := s.queue
		s.queue, s.again = nil, false
		s.mu.Unlock()

		if end := s.step(evs); end != nil {
			s.stop(end)
			continue
		}

		s.mu.Lock()
		if s.end == nil && len(s.queue) == 0 && !s.again && !s.dueLocked(s.hub.now()) {
			s.working = false
			s.hub.wheel.schedule(s, s.nextDueLocked())
			s.mu.Unlock()
			return false
		}
		s.mu.Unlock()
	}
}

// step does what is due: the token's expiry, the maximum age, a replay or
// catch-up, the queued events, the heartbeat.
func (s *stream) step(evs []*Event) *End {
	now := s.hub.now()
	s.mu.Lock()
	storeDue := (s.replay || s.catchUp) && now >= s.retryAt
	beat := now >= s.nextBeat
	s.mu.Unlock()
	if end := s.timeUp(now); end != nil {
		return end
	}
	if storeDue {
		if end := s.readStore(); end != nil {
			return end
		}
	}
	if len(evs) > 0 {
		if end := s.sendQueued(evs); end != nil {
			return end
		}
	}
	if beat {
		if s.ws != nil && !s.ws.beat(now, s.hub.heartbeat) {
			return EndDeadPeer // the pings went unanswered
		}
		if end := s.c.write([][]byte{s.f.heartbeat()}); end != nil {
			return end
		}
		s.mu.Lock()
		s.nextBeat = now + int64(s.hub.heartbeat)
		s.mu.Unlock()
	}
	return nil
}

// timeUp returns why the stream ends by now: its token expired, or it
// reached its maximum age; nil while neither.
func (s *stream) timeUp(now int64) *End {
	switch {
	case now >= s.expiresAt:
		return EndTokenExpired
	case s.maxAgeAt > 0 && now >= s.maxAgeAt:
		return EndMaxAge
	}
	return nil
}

// dueLocked reports whether a timer of the stream has passed.
func (s *stream) dueLocked(now int64) bool { return now >= s.nextDueLocked() }

// nextDueLocked is the stream's next timer: the heartbeat, the expiry, the
// maximum age, a store retry.
func (s *stream) nextDueLocked() int64 {
	due := min(s.nextBeat, s.expiresAt)
	if s.maxAgeAt > 0 {
		due = min(due, s.maxAgeAt)
	}
	if s.replay || s.catchUp {
		due = min(due, s.retryAt)
	}
	return due
}

// onTimer runs on the wheel's goroutine when the stream's timer passes. A
// heartbeat alone is written from here when the socket takes it at once;
// anything else is the worker's.
func (s *stream) onTimer(now int64) {
	s.mu.Lock()
	switch {
	case s.end != nil:
		s.mu.Unlock()
		return
	case s.working:
		if end := s.timeUp(now); end != nil {
			// Ended now rather than at the worker's next step: the worker
			// may be blocked writing to a stalled client.
			s.stopLocked(end)
			return
		}
		s.again = true
		s.mu.Unlock()
		return
	case !s.dueLocked(now):
		s.hub.wheel.schedule(s, s.nextDueLocked())
		s.mu.Unlock()
		return
	}
	if s.onlyBeatDueLocked(now) && (s.ws == nil || s.ws.beat(now, s.hub.heartbeat)) {
		if ok, end := s.c.tryWrite(s.f.heartbeat()); ok {
			s.nextBeat = now + int64(s.hub.heartbeat)
			s.hub.wheel.schedule(s, s.nextDueLocked())
			s.mu.Unlock()
			return
		} else if end != nil {
			s.stopLocked(end)
			return
		}
	}
	s.kickLocked()
}

func (s *stream) onlyBeatDueLocked(now int64) bool {
	return now >= s.nextBeat && s.timeUp(now) == nil && !((s.replay || s.catchUp) && now >= s.retryAt)
}

// finish closes the connection of an ended stream, once: it leaves the
// rooms and the wheel, tells the client why (if it can) and counts the end.
func (s *stream) finish() {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	end := s.end
	s.mu.Unlock()
	s.hub.wheel.cancel(s)
	// Counted before the stream leaves the rooms, so that whoever sees it
	// gone sees why; closing may wait a moment for a slow client.
	t := s.f.transport()
	s.hub.stats.open[t].Add(-1)
	s.hub.stats.countEnd(t, end)
	s.hub.unregister(s)
	s.c.close(s.f.ending(end, time.Unix(0, s.expiresAt)))
	s.hub.log.Debug("stream ended", "employee", s.employee, "transport", t.String(), "reason", end.Reason)
}

// sendQueued writes queued events in seq order. An event that arrives early
// (an earlier seq has not reached this instance yet, or a store read is
// pending) makes the stream read the missing ones from the store first:
// seqs are gapless and committed in order, so the store has them. If the
// store cannot say, the stream ends rather than skip (EndStore): the client
// resumes from its position.
func (s *stream) sendQueued(evs []*Event) *End {
	out := make([]*Event, 0, len(evs))
	for _, ev := range evs {
		s.mu.Lock()
		cursor, known, live := s.cursor, s.known, s.liveLocked()
		switch {
		case ev.Seq == 0: // outside the sequence (ephemeral, state)
			out = append(out, ev)
		case !known:
			s.cursor, s.known = ev.Seq, true
			out = append(out, ev)
		case ev.Seq <= cursor: // already sent
		case ev.Seq == cursor+1 && live:
			s.cursor = ev.Seq
			out = append(out, ev)
		default:
			s.mu.Unlock()
			if end := s.writeEvents(out); end != nil {
				return end
			}
			out = out[:0]
			if end, err := s.catchUpAll(); end != nil {
				return end
			} else if err != nil {
				s.hub.log.Warn("stream cannot fill a gap; it ends so the client resumes", "employee", s.employee, "seq", ev.Seq, "err", err)
				return EndStore
			}
			s.mu.Lock()
			s.replay, s.catchUp, s.failures = false, false, 0
			if ev.Seq > s.cursor {
				s.cursor = ev.Seq
				out = append(out, ev)
			}
		}
		s.mu.Unlock()
	}
	return s.writeEvents(out)
}

// writeEvents writes events in one go and counts them.
func (s *stream) writeEvents(evs []*Event) *End {
	if len(evs) == 0 {
		return nil
	}
	bufs := make([][]byte, len(evs))
	for i, ev := range evs {
		bufs[i] = s.f.event(ev)
	}
	if end := s.c.write(bufs); end != nil {
		return end
	}
	s.hub.stats.sent[s.f.transport()].Add(int64(len(evs)))
	if s.hub.written != nil {
		s.reportWritten(evs)
	}
	return nil
}

// stored reports whether ev is an employee's stored copy (not an
// ephemeral message, a state change or the engine's replay_truncated).
func stored(ev *Event) bool { return ev.Seq > 0 && ev.Name != truncatedEvent }

// reportWritten hands the runs of consecutive stored seqs in evs to the
// hub's WrittenFunc.
func (s *stream) reportWritten(evs []*Event) {
	var from, to int64
	for _, ev := range evs {
		if !stored(ev) {
			continue
		}
		if from > 0 && ev.Seq == to+1 {
			to = ev.Seq
			continue
		}
		if from > 0 {
			s.hub.written(s.employee, from, to)
		}
		from, to = ev.Seq, ev.Seq
	}
	if from > 0 {
		s.hub.written(s.employee, from, to)
	}
}

// readStore runs the due replay or catch-up. A store failure keeps it due
// and retries it with backoff; only a write failure ends the stream.
func (s *stream) readStore() *End {
	s.mu.Lock()
	replay := s.replay
	s.mu.Unlock()
	var end *End
	var err error
	if replay {
		end, err = s.replayStored()
	} else {
		end, err = s.catchUpAll()
	}
	if end != nil {
		return end
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		backoff := min(retryFirst<<min(s.failures, 5), retryMax)
		s.failures++
		s.retryAt = s.hub.now() + int64(backoff)
		s.hub.log.Warn("stream cannot read the store; retrying", "employee", s.employee, "in", backoff.String(), "err", err)
		return nil
	}
	s.replay, s.catchUp, s.failures = false, false, 0
	return nil
}

// replayStored sends what was stored after the position, up to ReplayLimit;
// beyond that it sends replay_truncated (with the newest seq as its id) and
// continues from the newest.
func (s *stream) replayStored() (*End, error) {
	ctx, cancel := context.WithTimeout(s.hub.base, storeTimeout)
	defer cancel()
	s.mu.Lock()
	after := s.cursor
	s.mu.Unlock()
	evs, err := s.hub.source.Since(ctx, s.employee, after, ReplayLimit+1)
	if err != nil {
		return nil, err
	}
	truncated := len(evs) > ReplayLimit
	if truncated {
		evs = evs[:ReplayLimit]
	}
	if end := s.writeStored(evs); end != nil || !truncated {
		return end, nil
	}
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	head, err := s.hub.source.Head(ctx, s.employee)
	if err != nil || head < cursor {
		head = cursor
	}
	b, _ := json.Marshal(map[string]any{
		"replayed": ReplayLimit,
		"next":     strconv.FormatInt(cursor+1, 10),
		"latest":   strconv.FormatInt(head, 10),
	})
	s.mu.Lock()
	s.cursor = head
	s.mu.Unlock()
	s.hub.stats.truncated.Add(1)
	return s.writeEvents([]*Event{NewEvent(head, truncatedEvent, b)}), nil
}

// catchUpAll sends every stored event after the position, in pages.
func (s *stream) catchUpAll() (*End, error) {
	if s.hub.source == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(s.hub.base, storeTimeout)
	defer cancel()
	for {
		s.mu.Lock()
		after := s.cursor
		s.mu.Unlock()
		evs, err := s.hub.source.Since(ctx, s.employee, after, ReplayLimit)
		if err != nil {
			return nil, err
		}
		if end := s.writeStored(evs); end != nil {
			return end, nil
		}
		if len(evs) < ReplayLimit {
			return nil, nil
		}
	}
}

// writeStored writes events read from the store and moves the position.
func (s *stream) writeStored(evs []*Event) *End {
	if len(evs) == 0 {
		return nil
	}
	if end := s.writeEvents(evs); end != nil {
		return end
	}
	s.mu.Lock()
	s.cursor, s.known = evs[len(evs)-1].Seq, true
	s.mu.Unlock()
	return nil
}
