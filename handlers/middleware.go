package handlers

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// statusWriter records the status and size of a response. It keeps Flush and
// exposes the original through Unwrap, so http.ResponseController (write
// deadlines, hijacking for WebSocket) still reaches the connection.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// RecordStatus records the status of a response whose head the stream
// engine writes itself on a taken-over connection (sse.StatusRecorder).
func (w *statusWriter) RecordStatus(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets WebSocket libraries that look for http.Hijacker directly take
// the connection over.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// accessLog logs one line per request, after it ends (streams log when they
// close). It never logs tokens, cookies or query strings.
func (h *Handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		h.metrics.observe(r, sw.status, time.Since(start).Seconds())
		// One line per request would drown a busy instance's info log; a
		// failing /readyz, polled by balancers, logs its changes itself.
		level := slog.LevelDebug
		if sw.status >= 500 && r.URL.Path != "/readyz" {
			level = slog.LevelWarn
		}
		h.log.LogAttrs(r.Context(), level, "http",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

// recoverer turns a panic into a 500 problem (when nothing was written yet)
// and a log line, and keeps the server up.
func (h *Handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.writeError(w, r, errors.New("panic in handler"))
				h.log.ErrorContext(r.Context(), "panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
