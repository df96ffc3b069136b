package handlers

import (
	"context"
	"net/http"
	"time"
)

// healthz serves GET /healthz: the process is alive.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz serves GET /readyz: 200 when the store (and, where configured, its
// listener and the key set) works and the instance is not shutting down.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		h.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, detail: "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := h.store.Ping(ctx)
	if err == nil && h.ready != nil {
		err = h.ready(ctx)
	}
	if err != nil {
		h.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, detail: "not ready: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
