package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// healthz serves GET /healthz: the process is alive.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz serves GET /readyz: 200 when the store (and, where configured, its
// listener and the key set) works and the instance is not shutting down.
// Load balancers poll it: it logs when readiness changes, not per poll.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeNotReady(w, r, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := h.store.Ping(ctx)
	if err == nil && h.ready != nil {
		err = h.ready(ctx)
	}
	if r.Context().Err() != nil {
		return // the poller left; its answer tells nothing
	}
	h.readiness.report(h.log, err)
	if err != nil {
		writeNotReady(w, r, "not ready: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeNotReady(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("Retry-After", "5")
	writeProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
		Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Detail: detail, Instance: r.URL.Path})
}

// readiness remembers whether the last /readyz found the instance ready,
// so that a poller sees one WARN when it stops being ready and one INFO
// when it is ready again.
type readiness struct {
	mu       sync.Mutex // guards notReady
	notReady bool
}

func (s *readiness) report(log *slog.Logger, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && !s.notReady:
		log.Warn("not ready: /readyz answers 503 until this clears", "err", err)
	case err == nil && s.notReady:
		log.Info("ready again: /readyz answers 200")
	}
	s.notReady = err != nil
}
