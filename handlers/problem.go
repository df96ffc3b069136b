package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

// Problem codes besides auth's (see auth.Code*).
const (
	CodeInvalidRequest     = "invalid_request"
	CodeConflict           = "conflict"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeNotFound           = "not_found"
	CodeRateLimited        = "rate_limited"
	CodeTooManyConnections = "too_many_connections"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Problem is an RFC 9457 problem details body with Herald's stable code.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Code     string       `json:"code"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// httpError is an error that already knows its status and code.
type httpError struct {
	status int
	code   string
	detail string
	fields []FieldError
	header http.Header
}

func (e *httpError) Error() string { return e.code + ": " + e.detail }

func badRequest(detail string, fields ...FieldError) *httpError {
	return &httpError{status: http.StatusBadRequest, code: CodeInvalidRequest, detail: detail, fields: fields}
}

func notFound(detail string) *httpError {
	return &httpError{status: http.StatusNotFound, code: CodeNotFound, detail: detail}
}

// writeError is the one place that maps errors to HTTP: problem+json with a
// stable code, WWW-Authenticate on 401, 5xx logged (4xx are the caller's).
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem{Type: "about:blank", Instance: r.URL.Path}
	var (
		ae *auth.Error
		he *httpError
		ce *store.ConflictError
	)
	switch {
	case errors.As(err, &ae):
		p.Status, p.Code, p.Detail = ae.Status, ae.Code, ae.Detail
		if ae.Status == http.StatusServiceUnavailable { // keys not loaded yet
			w.Header().Set("Retry-After", "5")
		}
	case errors.As(err, &he):
		p.Status, p.Code, p.Detail, p.Errors = he.status, he.code, he.detail, he.fields
		for k, v := range he.header {
			w.Header()[k] = v
		}
	case errors.Is(err, store.ErrNotFound):
		p.Status, p.Code, p.Detail = http.StatusNotFound, CodeNotFound, "no such resource"
	case errors.As(err, &ce):
		p.Status, p.Code = http.StatusConflict, CodeConflict
		p.Detail = fmt.Sprintf("%q already names employee %d: a login (username or email) names one employee", ce.Login, ce.Employee)
		p.Errors = []FieldError{{Field: ce.Field, Message: fmt.Sprintf("already names employee %d", ce.Employee)}}
	case errors.Is(err, store.ErrConflict):
		p.Status, p.Code, p.Detail = http.StatusConflict, CodeConflict, "the email or username already names another employee"
	case errors.Is(err, store.ErrIdempotencyMismatch):
		p.Status, p.Code = http.StatusUnprocessableEntity, CodeInvalidRequest
		p.Detail = "this Idempotency-Key was used for a different request"
		p.Errors = []FieldError{{Field: "Idempotency-Key", Message: "already used with a different request body"}}
	case errors.Is(err, sse.ErrTooManyStreams):
		p.Status, p.Code = http.StatusTooManyRequests, CodeTooManyConnections
		p.Detail = "at most " + strconv.Itoa(h.maxStreams) + " open streams per employee; close a tab"
		w.Header().Set("Retry-After", "10")
	case errors.Is(err, sse.ErrClosed):
		p.Status, p.Code, p.Detail = http.StatusServiceUnavailable, CodeUnavailable, "shutting down; try another instance"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, sse.ErrInstanceFull):
		p.Status, p.Code, p.Detail = http.StatusServiceUnavailable, CodeUnavailable, "this instance holds its maximum of streams (MAX_STREAMS); try another instance or later"
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, store.ErrOutcomeUnknown):
		p.Status, p.Code, p.Detail = http.StatusServiceUnavailable, CodeUnavailable, outcomeUnknown(r)
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, store.ErrUnavailable):
		p.Status, p.Code, p.Detail = http.StatusServiceUnavailable, CodeUnavailable, "the store is unavailable; nothing was changed, retry later"
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client left; nobody reads an answer
	default:
		p.Status, p.Code, p.Detail = http.StatusInternalServerError, CodeInternal, "internal error"
	}
	p.Title = http.StatusText(p.Status)
	if p.Status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "err", err)
	} else {
		h.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", p.Status, "code", p.Code, "detail", p.Detail)
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+quoteSafe(p.Detail)+`"`)
	}
	writeProblem(w, p)
}

// outcomeUnknown explains a 503 after which nobody can know whether the
// write committed (the store stopped answering with it in flight), and how
// to retry without a duplicate.
func outcomeUnknown(r *http.Request) string {
	const lost = "the store stopped answering while this request was being saved: it may or may not have been saved. "
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/notifications":
		return lost + "Check before retrying"
	case r.Header.Get("Idempotency-Key") != "":
		return lost + "Retry with the same Idempotency-Key: if it was saved, the retry returns the first answer and stores nothing new"
	}
	return lost + "A retry may store it twice: publish with an Idempotency-Key to retry safely"
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

// quoteSafe keeps a description inside an RFC 6750 quoted string.
func quoteSafe(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// writeJSON writes v as a JSON body with status. The body is encoded
// first and sent with its Content-Length in one write: written as it was
// encoded, a body over net/http's 4 KiB buffer (a page of the inbox) went
// out chunked, in several writes the client woke up for.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer putJSONBuffer(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a value json cannot encode (a bug): say so rather than
		// send half a body.
		writeProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError),
			Status: http.StatusInternalServerError, Code: CodeInternal, Detail: "internal error"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// jsonBuffers holds writeJSON's buffers.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putJSONBuffer returns buf to jsonBuffers unless it grew large (a rare
// big answer need not stay in memory).
func putJSONBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		jsonBuffers.Put(buf)
	}
}

// logger returns the handler's logger (never nil).
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
