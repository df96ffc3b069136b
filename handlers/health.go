package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/corp/herald/auth"
)

// readyTimeout bounds the readiness checks: a load balancer asks often and
// must get an answer, 503 included, quickly.
const readyTimeout = 2 * time.Second

// healthz serves GET /healthz: the process is alive.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz serves GET /readyz: 200 when the store (and, where configured, its
// listener and the key set) works and the instance is not shutting down.
// Why it is not ready is shown only to a caller with a valid token: the
// causes name internal addresses and errors (see showDetail).
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		h.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, detail: "shutting down",
			header: http.Header{"Retry-After": {"5"}}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	public, err := "the store is not ready", h.store.Ping(ctx)
	if err == nil && h.ready != nil {
		public, err = "not ready", h.ready(ctx)
	}
	if err != nil {
		detail := public
		if h.showDetail(r) {
			detail = "not ready: " + err.Error()
		}
		h.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, detail: detail,
			header: http.Header{"Retry-After": {"5"}}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// showDetail reports whether r carries a token that verifies (any caller:
// services and operators use it). The directory is not consulted: it may
// be what is down.
func (h *Handler) showDetail(r *http.Request) bool {
	raw, _, err := auth.Extract(r, h.auth.Cookie())
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	_, err = h.auth.Verify(ctx, raw)
	return err == nil
}
