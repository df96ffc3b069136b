package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

const (
	// ReplayLimit is how many stored notifications a connect replays; beyond
	// it the stream sends replay_truncated and continues from the newest.
	ReplayLimit = 1000
	// catchUpRetry is how often a stream whose store was down at connect
	// tries again to catch up.
	catchUpRetry = 2 * time.Second
	// writeTimeout bounds each write to a client; a client that cannot take
	// a write for this long is gone.
	writeTimeout = 10 * time.Second
	// storeTimeout bounds a stream's store reads (replay, catch-up): a hung
	// database must not hang a stream forever.
	storeTimeout = 10 * time.Second
)

// frames is what a transport writes. The SSE and WebSocket transports
// implement it; everything else about a stream is shared.
type frames interface {
	// open starts the stream (headers, preamble) once the subscription
	// exists; startID is the stream's starting position ("" when unknown).
	open(startID string) error
	// events writes events in order and flushes.
	events(evs []*sse.Event) error
	// heartbeat writes a keep-alive.
	heartbeat() error
	// control writes a control event (replay_truncated, token_expired).
	control(ev *sse.Event) error
	// transport names the transport in metrics ("sse", "ws").
	transport() string
	// abort is called, with the reason, when the hub ends the stream: it may
	// make a pending or future write fail at once. It is called from another
	// goroutine and must not block.
	abort(reason error)
}

// resumePoint reads where a client wants to resume: the Last-Event-ID
// header, else the lastEventId query parameter (the header wins: EventSource
// reconnects to the original URL, query included, with the newer position
// in the header). ok is false when the client gave neither.
func resumePoint(r *http.Request) (after int64, ok bool, err error) {
	field, v := "Last-Event-ID", strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		field, v = "lastEventId", strings.TrimSpace(r.URL.Query().Get("lastEventId"))
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, badRequest("cannot resume from "+strconv.Quote(v),
			FieldError{Field: field, Message: "must be an event id: a non-negative integer"})
	}
	return n, true, nil
}

// stream is one open stream of an employee: the subscription, the position
// (cursor: the highest seq the client has) and the transport.
type stream struct {
	h   *Handler
	id  auth.Identity
	sub *sse.Subscription
	out frames
	// cursor is the highest seq the client has; valid when known. It is
	// unknown only for a fresh connect while the store is down: the first
	// live event then sets it.
	cursor int64
	known  bool
	// replayDue is set while the initial replay has not happened because the
	// store failed; it is retried every catchUpRetry.
	replayDue bool
}

// openStream subscribes the caller and works out where its stream starts.
// The subscription comes first, so nothing committed after the starting
// point can be missed: it is either replayed from the store or in the queue.
// Errors here come before any byte is written, as plain HTTP answers.
func (h *Handler) openStream(ctx context.Context, r *http.Request, out frames) (*stream, error) {
	id, err := employeeOnly(r)
	if err != nil {
		return nil, err
	}
	if !id.ExpiresAt.After(time.Now()) {
		// Accepted within the clock skew, but a stream would end at once and
		// the client would loop: ask for a fresh token instead.
		return nil, &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeTokenExpired, Detail: "token expired"}
	}
	after, resuming, err := resumePoint(r)
	if err != nil {
		return nil, err
	}
	sub, err := h.hub.Subscribe(id.Employee.ID, id.Roles)
	if err != nil {
		return nil, err
	}
	s := &stream{h: h, id: id, sub: sub, out: out}
	h.metrics.streamsOpened.WithLabelValues(out.transport()).Inc()
	s.locate(ctx, after, resuming)
	return s, nil
}

// abortOnEnd makes a hub-ended stream (queue overflowed, shutdown) abort a
// write that may be stuck on a stalled client rather than wait for its
// deadline. Transports call it once their frames can write.
func (s *stream) abortOnEnd() { s.sub.OnEnd(s.out.abort) }

// locate sets the starting cursor: the resume point, but never beyond the
// newest stored seq (a client from before a database reset would otherwise
// skip everything new), or the newest seq for a fresh connect. When the
// store is down, a resuming stream keeps its resume point and replays later;
// a fresh one takes its position from the first live event.
func (s *stream) locate(ctx context.Context, after int64, resuming bool) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	head, err := s.h.store.Head(ctx, s.id.Employee.ID)
	if err != nil {
		s.h.log.WarnContext(ctx, "stream opened while the store is down; it catches up later", "employee", s.id.Employee.ID, "err", err)
		s.cursor, s.known, s.replayDue = after, resuming, resuming
		return
	}
	s.cursor, s.known, s.replayDue = head, true, resuming && after < head
	if s.replayDue {
		s.cursor = after
	}
}

// startID is the position the stream starts from, sent in its first bytes
// so that a client whose stream drops before any event still resumes from
// there (EventSource takes an id: line even from a block without data).
// Empty when the store was down at connect and the position is unknown.
func (s *stream) startID() string {
	if !s.known {
		return ""
	}
	return strconv.FormatInt(s.cursor, 10)
}

// run writes the stream until the client leaves, the hub ends it, or the
// token expires. It is one select over the context, the queue, the
// heartbeat, the token's expiry and, while a replay is due, its retry.
func (s *stream) run(ctx context.Context) (err error) {
	defer func() { s.h.metrics.streamClosed(s.out.transport(), err) }()
	defer s.sub.Close()
	if err := s.out.open(s.startID()); err != nil {
		return err
	}
	if err := s.replay(ctx); err != nil {
		return err
	}
	// Only a stream whose replay failed retries it; the others have no ticker.
	var retry <-chan time.Time
	if s.replayDue {
		t := time.NewTicker(catchUpRetry)
		defer t.Stop()
		retry = t.C
	}
	heartbeat := time.NewTicker(s.h.heartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(time.Until(s.id.ExpiresAt))
	defer expiry.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.sub.Done():
			return s.sub.Err()
		case <-expiry.C:
			return s.expire()
		case <-heartbeat.C:
			if err := s.out.heartbeat(); err != nil {
				return err
			}
		case <-retry:
			if err := s.replay(ctx); err != nil {
				return err
			}
			if !s.replayDue {
				retry = nil
			}
		case <-s.sub.Ready():
			if err := s.flushPending(ctx); err != nil {
				return err
			}
		}
	}
}

// flushPending writes what the hub queued, in seq order, catching up from
// the store first when a resync was requested or a seq arrives early.
func (s *stream) flushPending(ctx context.Context) error {
	evs, resync := s.sub.Take()
	if resync && s.known && !s.replayDue {
		if err := s.catchUp(ctx); err != nil {
			// The next live event's gap check will find what is missing.
			s.h.log.WarnContext(ctx, "stream catch-up failed", "employee", s.id.Employee.ID, "err", err)
		}
	}
	out := make([]*sse.Event, 0, len(evs))
	for _, ev := range evs {
		switch {
		case ev.Seq == 0: // ephemeral: no place in the sequence
			out = append(out, ev)
		case !s.known:
			s.cursor, s.known = ev.Seq, true
			out = append(out, ev)
		case ev.Seq <= s.cursor: // already sent (replayed or caught up)
		case ev.Seq == s.cursor+1 && !s.replayDue:
			s.cursor = ev.Seq
			out = append(out, ev)
		default:
			// An earlier seq has not reached us yet. Seqs are gapless and
			// committed in order, so the store has it: write what we hold,
			// fetch the gap, then this event. If the store cannot say, end
			// the stream rather than skip: the client resumes from the cursor.
			if err := s.send(out); err != nil {
				return err
			}
			out = out[:0]
			if err := s.catchUp(ctx); err != nil {
				return fmt.Errorf("fill gap before seq %d: %w", ev.Seq, err)
			}
			s.replayDue = false
			if ev.Seq > s.cursor {
				s.cursor = ev.Seq
				out = append(out, ev)
			}
		}
	}
	return s.send(out)
}

// send writes events and counts them.
func (s *stream) send(evs []*sse.Event) error {
	if len(evs) == 0 {
		return nil
	}
	s.h.metrics.eventsSent.WithLabelValues(s.out.transport()).Add(float64(len(evs)))
	return s.out.events(evs)
}

// replay, when due, sends what was stored after the cursor, up to
// ReplayLimit; beyond that it sends replay_truncated (with the newest seq as
// its id) and continues from the newest. If the store fails, the replay
// stays due and the stream stays open.
func (s *stream) replay(ctx context.Context) error {
	if !s.replayDue {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	items, err := s.h.store.Since(ctx, s.id.Employee.ID, s.cursor, ReplayLimit+1)
	if err != nil {
		s.h.log.WarnContext(ctx, "replay failed; retrying", "employee", s.id.Employee.ID, "err", err)
		return nil
	}
	s.replayDue = false
	truncated := len(items) > ReplayLimit
	if truncated {
		items = items[:ReplayLimit]
	}
	if err := s.writeItems(items); err != nil {
		return err
	}
	if !truncated {
		return nil
	}
	head, err := s.h.store.Head(ctx, s.id.Employee.ID)
	if err != nil || head < s.cursor {
		head = s.cursor
	}
	next := s.cursor + 1
	s.cursor = head
	s.h.metrics.replayTruncated.Inc()
	return s.out.control(controlEvent("replay_truncated", head, map[string]any{
		"replayed": ReplayLimit,
		"next":     strconv.FormatInt(next, 10),
		"latest":   strconv.FormatInt(head, 10),
	}))
}

// catchUp sends every stored item after the cursor, in pages.
func (s *stream) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	for {
		items, err := s.h.store.Since(ctx, s.id.Employee.ID, s.cursor, ReplayLimit)
		if err != nil {
			return err
		}
		if err := s.writeItems(items); err != nil {
			return err
		}
		if len(items) < ReplayLimit {
			return nil
		}
	}
}

func (s *stream) writeItems(items []store.InboxItem) error {
	if len(items) == 0 {
		return nil
	}
	evs := make([]*sse.Event, len(items))
	for i, it := range items {
		evs[i] = itemEvent(it)
	}
	s.cursor = items[len(items)-1].Seq
	return s.send(evs)
}

// controlEvent builds a stream control event. With seq > 0 it carries an id,
// which moves the client's resume position.
func controlEvent(name string, seq int64, data any) *sse.Event {
	b, _ := json.Marshal(data)
	return sse.NewEvent(seq, name, b)
}

// errTokenExpired ends a stream whose token expired (after the
// token_expired event was sent).
var errTokenExpired = errors.New("token expired")

// expire sends token_expired and ends the stream with errTokenExpired (or
// the write's error).
func (s *stream) expire() error {
	err := s.out.control(controlEvent("token_expired", 0, map[string]string{
		"code": auth.CodeTokenExpired, "expired_at": formatTime(s.id.ExpiresAt),
	}))
	if err != nil {
		return err
	}
	return errTokenExpired
}

// streamEnded reports whether err only means the stream is over.
func streamEnded(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, errTokenExpired) ||
		errors.Is(err, sse.ErrClosed) || errors.Is(err, sse.ErrSlowConsumer) || errors.Is(err, sse.ErrRemoved)
}
