package handlers

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/corp/herald/sse"
)

// retryMillis is the reconnection delay the stream asks EventSource to use.
const retryMillis = 3000

// events serves GET /events, the Server-Sent Events transport.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	if h.canPark(r) {
		h.eventsParked(w, r)
		return
	}
	out := &sseFrames{w: w, rc: http.NewResponseController(w)}
	s, err := h.openStream(r.Context(), r, out)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s.abortOnEnd()
	if err := s.run(r.Context()); !streamEnded(err) {
		h.log.DebugContext(r.Context(), "stream ended", "employee", s.id.Employee.ID, "err", err)
	}
}

// sseFrames writes text/event-stream. Every write sets a deadline and
// flushes, so a stuck client is noticed and nothing waits in a buffer.
type sseFrames struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     []byte
	aborted atomic.Bool
}

// errAborted ends a stream whose subscription the hub dropped.
var errAborted = errors.New("stream aborted")

func (f *sseFrames) transport() string { return "sse" }

func (f *sseFrames) abort(error) {
	f.aborted.Store(true)
	_ = f.rc.SetWriteDeadline(longAgo)
}

func (f *sseFrames) open(startID string) error {
	h := f.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	f.w.WriteHeader(http.StatusOK)
	f.buf = appendPreamble(f.buf[:0], startID)
	return f.write(f.buf)
}

func (f *sseFrames) events(evs []*sse.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := f.deadline(); err != nil {
		return err
	}
	for _, ev := range evs {
		if _, err := f.w.Write(ev.SSE()); err != nil {
			return err
		}
	}
	return f.rc.Flush()
}

func (f *sseFrames) heartbeat() error {
	f.buf = sse.AppendComment(f.buf[:0], "heartbeat")
	return f.write(f.buf)
}

func (f *sseFrames) control(ev *sse.Event) error { return f.write(ev.SSE()) }

func (f *sseFrames) write(b []byte) error {
	if err := f.deadline(); err != nil {
		return err
	}
	if _, err := f.w.Write(b); err != nil {
		return err
	}
	return f.rc.Flush()
}

// deadline sets the next write's deadline.
func (f *sseFrames) deadline() error {
	err := armWriteDeadline(&f.aborted, f.rc.SetWriteDeadline)
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// armWriteDeadline sets the next write's deadline through set, unless the
// stream was aborted. The second look at aborted closes the race with abort
// (which sets the deadline into the past): whichever sets its deadline
// last, a write after an abort fails at once.
func armWriteDeadline(aborted *atomic.Bool, set func(time.Time) error) error {
	if aborted.Load() {
		return errAborted
	}
	err := set(time.Now().Add(writeTimeout))
	if aborted.Load() {
		_ = set(longAgo)
		return errAborted
	}
	return err
}

// eventsParked serves an HTTP/1.1 stream: the handshake and the replay run
// here, then the connection is taken over and the stream parked (park.go),
// and net/http's goroutine returns.
func (h *Handler) eventsParked(w http.ResponseWriter, r *http.Request) {
	out := &parkedFrames{}
	s, err := h.openStream(r.Context(), r, out)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	conn, err := hijackSSE(w, s.startID())
	if err != nil {
		s.sub.Close()
		h.log.WarnContext(r.Context(), "cannot take the stream's connection over", "err", err)
		return
	}
	out.conn = conn
	s.sub.OnWake(out.wake)
	s.abortOnEnd()
	// The replay runs on this goroutine, whose stack the store calls have
	// grown anyway; the parked goroutine starts small.
	if err := s.replay(r.Context()); err != nil {
		s.sub.Close()
		out.finish(false)
		return
	}
	parked := h.goParked(func() {
		if err := s.runParked(h.base, out); !streamEnded(err) {
			h.log.Debug("stream ended", "employee", s.id.Employee.ID, "err", err)
		}
	})
	if !parked { // shutting down
		s.sub.Close()
		out.finish(false)
	}
}

// appendPreamble appends a stream's first bytes: the retry delay, a comment,
// and the starting position as an id line (see stream.startID), in one
// block that fires no event: "retry: 3000\n: connected\nid: 42\n\n".
func appendPreamble(dst []byte, startID string) []byte {
	dst = sse.AppendRetry(dst, retryMillis)
	dst = append(dst, ": connected\n"...)
	if startID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, startID...)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}
