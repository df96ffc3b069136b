package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/corp/herald/sse"
)

// WebSocket close codes. 4001 is the SPEC's; the others are the standard
// codes that say why, so a client knows whether to reconnect at once.
const (
	closeTokenExpired websocket.StatusCode = 4001 // get a fresh token, then reconnect
)

// ws serves GET /ws, the WebSocket fallback: the same auth, hub, queues and
// replay as /events; server → client text frames
// {"event":"notification","id":"<seq>","data":{…}}.
func (h *Handler) ws(w http.ResponseWriter, r *http.Request) {
	// Browsers send cookies on a cross-site WebSocket upgrade, so the Origin
	// must be one of FRONTEND_URL (or this host) before anything else.
	if !h.originAllowed(r) {
		h.writeError(w, r, &httpError{status: http.StatusForbidden, code: "forbidden",
			detail: "origin " + r.Header.Get("Origin") + " is not allowed (FRONTEND_URL)"})
		return
	}
	out := &wsFrames{}
	s, err := h.openStream(r.Context(), r, out)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the Origin was checked above, with FRONTEND_URL's schemes
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.sub.Close() // Accept has answered the client
		return
	}
	ctx := c.CloseRead(r.Context()) // answers pings and notices the client leaving
	out.attach(ctx, c)
	s.abortOnEnd()
	runErr := s.run(ctx)
	code, reason := closeStatus(runErr)
	if code == 0 {
		_ = c.CloseNow()
		return
	}
	_ = c.Close(code, reason)
	if !streamEnded(runErr) {
		h.log.DebugContext(r.Context(), "ws stream ended", "employee", s.id.Employee.ID, "err", runErr)
	}
}

// closeStatus maps why a stream ended to a close frame; 0 means the client
// is gone and no frame is sent.
func closeStatus(err error) (websocket.StatusCode, string) {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0, ""
	case errors.Is(err, errTokenExpired):
		return closeTokenExpired, "token expired"
	case errors.Is(err, sse.ErrClosed):
		return websocket.StatusServiceRestart, "server shutting down; reconnect"
	case errors.Is(err, sse.ErrSlowConsumer):
		return websocket.StatusTryAgainLater, "too slow; reconnect and resume"
	case errors.Is(err, sse.ErrRemoved):
		return websocket.StatusPolicyViolation, "employee removed"
	}
	return websocket.StatusInternalError, "stream error; reconnect and resume"
}

// originAllowed accepts requests without an Origin (not a browser; auth is
// still required), from this host, or from one of FRONTEND_URL's origins
// (scheme and host must both match).
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range h.origins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// wsFrames writes WebSocket text frames, each with its own deadline.
type wsFrames struct {
	conn    atomic.Pointer[websocket.Conn]
	ctx     context.Context
	aborted atomic.Bool
}

// attach hands the accepted connection to the frames; ctx ends when the
// client leaves.
func (f *wsFrames) attach(ctx context.Context, c *websocket.Conn) {
	f.ctx = ctx
	f.conn.Store(c)
	if f.aborted.Load() { // the hub dropped the stream during the upgrade
		go func() { _ = c.CloseNow() }()
	}
}

func (f *wsFrames) open(string) error { return nil }

func (f *wsFrames) transport() string { return "ws" }

func (f *wsFrames) events(evs []*sse.Event) error {
	for _, ev := range evs {
		if err := f.write(ev.JSON()); err != nil {
			return err
		}
	}
	return nil
}

func (f *wsFrames) heartbeat() error {
	ctx, cancel := context.WithTimeout(f.ctx, writeTimeout)
	defer cancel()
	return f.conn.Load().Ping(ctx)
}

func (f *wsFrames) control(ev *sse.Event) error { return f.write(ev.JSON()) }

func (f *wsFrames) write(b []byte) error {
	ctx, cancel := context.WithTimeout(f.ctx, writeTimeout)
	defer cancel()
	return f.conn.Load().Write(ctx, websocket.MessageText, b)
}

// abort drops the connection of a stream the hub cut off for being too
// slow, so a write stuck on it ends now. Other endings (shutdown, employee
// removed) close gracefully with a close frame from ws. CloseNow waits for
// the connection's goroutines, so it runs on its own goroutine, which ends
// when the connection is closed.
func (f *wsFrames) abort(reason error) {
	if !errors.Is(reason, sse.ErrSlowConsumer) || !f.aborted.CompareAndSwap(false, true) {
		return
	}
	if c := f.conn.Load(); c != nil {
		go func() { _ = c.CloseNow() }()
	}
}
