package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
)

// events serves GET /events, the Server-Sent Events transport: the caller
// is authenticated here and the stream handed to the engine (sse.Hub).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	if !h.checkOrigin(w, r) {
		return
	}
	p, err := streamParams(r)
	if err == nil {
		err = h.hub.ServeSSE(w, r, p)
	}
	if err != nil {
		h.writeError(w, r, err)
	}
}

// streamParams reads who opens a stream and where it resumes; it refuses
// services and tokens already past their expiry.
func streamParams(r *http.Request) (sse.Params, error) {
	id, err := employeeOnly(r)
	if err != nil {
		return sse.Params{}, err
	}
	if !id.ExpiresAt.After(time.Now()) {
		// Accepted within the clock skew, but a stream would end at once and
		// the client would loop: ask for a fresh token instead.
		return sse.Params{}, &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeTokenExpired, Detail: "token expired"}
	}
	after, resuming, err := resumePoint(r)
	if err != nil {
		return sse.Params{}, err
	}
	return sse.Params{
		Employee: id.Employee.ID, Roles: id.Roles, ExpiresAt: id.ExpiresAt,
		After: after, Resuming: resuming,
	}, nil
}

// resumePoint reads where a client wants to resume: the Last-Event-ID
// header, else the lastEventId query parameter (the header wins: EventSource
// reconnects to the original URL, query included, with the newer position
// in the header). ok is false when the client gave neither.
func resumePoint(r *http.Request) (after int64, ok bool, err error) {
	field, v := "Last-Event-ID", strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		field, v = "lastEventId", strings.TrimSpace(r.URL.Query().Get("lastEventId"))
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, badRequest("cannot resume from "+strconv.Quote(v),
			FieldError{Field: field, Message: "must be an event id: a non-negative integer"})
	}
	return n, true, nil
}
