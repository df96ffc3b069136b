package handlers

import (
	"net/http"
	"net/url"
	"strings"
)

// ws serves GET /ws, the WebSocket fallback: the same auth, hub, queues and
// replay as /events; server → client text frames
// {"event":"notification","id":"<seq>","data":{…}}.
func (h *Handler) ws(w http.ResponseWriter, r *http.Request) {
	if !h.checkOrigin(w, r) {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		h.writeError(w, r, badRequest("not a WebSocket handshake",
			FieldError{Field: "Upgrade", Message: "must be websocket (open /ws with a WebSocket client)"}))
		return
	}
	p, err := streamParams(r)
	if err == nil {
		err = h.hub.ServeWS(w, r, p)
	}
	if err != nil {
		h.writeError(w, r, err)
	}
}

// checkOrigin answers 403 to a browser page whose origin is not allowed.
// Browsers send cookies with a cross-site stream request (EventSource with
// credentials, a WebSocket upgrade): CORS keeps such a page from reading
// an event stream, but not from opening it, and the open stream would take
// one of the employee's places. So the Origin must be one of FRONTEND_URL
// (or this host) before anything else.
func (h *Handler) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	if h.originAllowed(r) {
		return true
	}
	h.writeError(w, r, &httpError{status: http.StatusForbidden, code: "forbidden",
		detail: "origin " + r.Header.Get("Origin") + " is not allowed (FRONTEND_URL)"})
	return false
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
