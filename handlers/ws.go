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
	// Browsers send cookies on a cross-site WebSocket upgrade, so the Origin
	// must be one of FRONTEND_URL (or this host) before anything else.
	if !h.originAllowed(r) {
		h.writeError(w, r, &httpError{status: http.StatusForbidden, code: "forbidden",
			detail: "origin " + r.Header.Get("Origin") + " is not allowed (FRONTEND_URL)"})
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
