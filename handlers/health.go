package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
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
// causes name internal addresses and errors (see showDetail). Load
// balancers poll it: it logs when readiness changes, not per poll.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeNotReady(w, r, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	public, err := "the store is not ready", h.store.Ping(ctx)
	if err == nil && h.ready != nil {
		public, err = "not ready", h.ready(ctx)
	}
	if r.Context().Err() != nil {
		return // the poller left; its answer tells nothing
	}
	h.readiness.report(h.log, err)
	if err != nil {
		detail := public
		if h.showDetail(r) {
			detail = "not ready: " + err.Error()
		}
		writeNotReady(w, r, detail)
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
