package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/store"
)

// Publish limits. The SPEC fixes title, type, event and data; the others are
// ours and documented in the OpenAPI document.
const (
	maxTitle     = 200
	maxBody      = 10000 // characters
	maxDataBytes = 16 << 10
	maxRole      = 100
	maxEmail     = 254
	maxIdemKey   = 255
	maxURL       = 2048 // characters
	// maxExpiryYears and maxSchedule bound expires_at and deliver_at ahead
	// of now: one calendar year (365 or 366 days), and 30 days.
	maxExpiryYears = 1
	maxSchedule    = 30 * 24 * time.Hour
)

// isTypeName reports whether s matches [a-z0-9_.-]{1,64} (a notification's
// type), and with upper also A-Z ([A-Za-z0-9_.-]{1,64}, an event name):
// a loop instead of a regexp, since every publish checks them.
func isTypeName(s string, upper bool) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		case upper && c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return true
}

// reservedEvents are the stream's own control events; an ephemeral message
// may not pose as one.
var reservedEvents = map[string]bool{"token_expired": true, "replay_truncated": true, "closed": true, stateEventName: true}

type publishTargets struct {
	Employees []int64  `json:"employees"`
	Emails    []string `json:"emails"`
	Roles     []string `json:"roles"`
	All       bool     `json:"all"`
}

type publishRequest struct {
	To      *publishTargets `json:"to"`
	Type    *string         `json:"type"`
	Title   *string         `json:"title"`
	Body    string          `json:"body"`
	Data    json.RawMessage `json:"data"`
	Persist *bool           `json:"persist"`
	Event   string          `json:"event"`
	// The notification center's fields (persisted notifications only).
	URL       string  `json:"url"`
	ExpiresAt *string `json:"expires_at"`
	DeliverAt *string `json:"deliver_at"`
	Required  bool    `json:"required"`
}

type publishResponse struct {
	ID         string `json:"id,omitempty"`
	Recipients int    `json:"recipients"`
	// Unknown lists targets that matched nobody, as given: employee IDs as
	// numbers, emails as strings.
	Unknown []any `json:"unknown"`
	// DeliverAt is set for a scheduled notification.
	DeliverAt string `json:"deliver_at,omitempty"`
}

// publish serves POST /notifications: validate, persist (or not, for
// ephemeral messages), then fan out after commit.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) error {
	id, err := publisherOnly(r)
	if err != nil {
		return err
	}
	idemKey, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req publishRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	var idem *store.Idempotency
	if idemKey != "" {
		idem = &store.Idempotency{Owner: idempotencyOwner(id), Key: idemKey, Hash: fingerprint(req)}
	}
	m, persist, err := req.validate(time.Now())
	if err != nil {
		if idem == nil || !req.validApartFromNow() {
			return err
		}
		// A retry whose times were valid at its first publish (an
		// expires_at that has passed since) gets the first answer; a key
		// never used gets the refusal.
		res, rerr := h.store.Replay(r.Context(), *idem)
		if errors.Is(rerr, store.ErrNotFound) {
			return err
		} else if rerr != nil {
			return rerr
		}
		h.answerPublish(w, req.Persist == nil || *req.Persist, res)
		return nil
	}
	m.Publisher, m.Owner = id.Subject, publisherKey(id)
	var res store.PublishResult
	if persist {
		res, err = h.store.Publish(r.Context(), m, idem)
	} else {
		res, err = h.store.PublishEphemeral(r.Context(), m, idem)
	}
	if err != nil {
		return err
	}
	if res.Replayed && res.DeliverAt == nil {
		// An answer saved before answers kept deliver_at (keys live 24
		// hours): the request's, while it is still ahead.
		res.DeliverAt = m.DeliverAt
	}
	h.answerPublish(w, persist, res)
	return nil
}

// answerPublish writes the answer to a publish, or the first answer again
// to a retry (Replayed): its deliver_at is the one the first answer gave,
// even after that time has passed.
func (h *Handler) answerPublish(w http.ResponseWriter, persist bool, res store.PublishResult) {
	status := http.StatusCreated
	if !persist {
		status = http.StatusAccepted
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		kind := "persisted"
		if !persist {
			kind = "ephemeral"
		}
		h.metrics.published.WithLabelValues(kind).Inc()
		h.metrics.recipients.Add(float64(res.Recipients))
	}
	body := publishResponse{Recipients: res.Recipients, Unknown: []any{}}
	if res.NotificationID > 0 {
		body.ID = strconv.FormatInt(res.NotificationID, 10)
	}
	for _, e := range res.Unknown.Employees {
		body.Unknown = append(body.Unknown, e)
	}
	for _, e := range res.Unknown.Emails {
		body.Unknown = append(body.Unknown, e)
	}
	if res.DeliverAt != nil {
		body.DeliverAt = formatTime(*res.DeliverAt)
	}
	writeJSON(w, status, body)
}

// validate checks every field at now, collecting all errors, and returns
// the message.
func (req *publishRequest) validate(now time.Time) (store.Message, bool, error) {
	return req.check(&now)
}

// validApartFromNow reports whether req passes every check that does not
// depend on when it is made: a retry whose expires_at has passed since its
// first publish is still the request it was.
func (req *publishRequest) validApartFromNow() bool {
	_, _, err := req.check(nil)
	return err == nil
}

// check is validate, leaving out the checks relative to now when it is nil.
func (req *publishRequest) check(now *time.Time) (store.Message, bool, error) {
	var errs []FieldError
	add := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }

	persist := req.Persist == nil || *req.Persist
	if req.To == nil {
		add("to", "required: name at least one target (employees, emails, roles or all)")
	} else {
		t := req.To
		if len(t.Employees) == 0 && len(t.Emails) == 0 && len(t.Roles) == 0 && !t.All {
			add("to", "name at least one target: employees, emails, roles or all")
		}
		for i, e := range t.Employees {
			if e <= 0 {
				add(fmt.Sprintf("to.employees[%d]", i), "must be a positive employee ID")
			}
		}
		for i, e := range t.Emails {
			if !validEmail(e) {
				add(fmt.Sprintf("to.emails[%d]", i), "must be an email address")
			}
		}
		for i, role := range t.Roles {
			if !validRole(role) {
				add(fmt.Sprintf("to.roles[%d]", i), fmt.Sprintf("must be 1–%d printable characters", maxRole))
			}
		}
	}
	switch {
	case req.Type == nil:
		add("type", "required")
	case !isTypeName(*req.Type, false):
		add("type", "must match [a-z0-9_.-]{1,64}")
	}
	switch {
	case req.Title == nil:
		add("title", "required")
	case strings.TrimSpace(*req.Title) == "":
		add("title", "must not be blank")
	case utf8.RuneCountInString(*req.Title) > maxTitle:
		add("title", fmt.Sprintf("at most %d characters", maxTitle))
	case strings.ContainsRune(*req.Title, 0):
		add("title", "must not contain NUL characters")
	}
	switch {
	case utf8.RuneCountInString(req.Body) > maxBody:
		add("body", fmt.Sprintf("at most %d characters", maxBody))
	case strings.ContainsRune(req.Body, 0):
		add("body", "must not contain NUL characters")
	}
	data := json.RawMessage(strings.TrimSpace(string(req.Data)))
	switch {
	case len(data) == 0 || string(data) == "null":
		data = nil
	case data[0] != '{':
		add("data", "must be a JSON object")
	case len(data) > maxDataBytes:
		add("data", fmt.Sprintf("at most %d KiB", maxDataBytes>>10))
	}
	if req.Event != "" {
		switch {
		case persist && req.Event != "notification":
			add("event", `only ephemeral messages ("persist": false) choose their event name`)
		case !isTypeName(req.Event, true):
			add("event", "must match [A-Za-z0-9_.-]{1,64}")
		case reservedEvents[req.Event]:
			add("event", req.Event+" is reserved for the stream itself")
		}
	}
	center := req.centerFields(now, persist, add)
	if len(errs) > 0 {
		return store.Message{}, false, badRequest("the notification is invalid", errs...)
	}
	m := store.Message{Type: *req.Type, Title: *req.Title, Body: req.Body, Data: compactJSON(data), Event: req.Event}
	m.URL, m.ExpiresAt, m.DeliverAt, m.Required = center.URL, center.ExpiresAt, center.DeliverAt, center.Required
	m.To = store.Targets{Employees: req.To.Employees, Emails: req.To.Emails, Roles: req.To.Roles, All: req.To.All}
	return m, persist, nil
}

// compactJSON removes insignificant space, so data travels on one SSE line.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func validEmail(s string) bool {
	if len(s) > maxEmail || strings.ContainsAny(s, " \t\r\n<>,;\"\x00") {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && utf8.ValidString(s)
}

func validRole(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxRole || strings.TrimSpace(s) != s {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// idempotencyKey reads and checks the Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > maxIdemKey {
		return "", badRequest("Idempotency-Key too long", FieldError{Field: "Idempotency-Key", Message: fmt.Sprintf("at most %d characters", maxIdemKey)})
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", badRequest("Idempotency-Key must be printable ASCII", FieldError{Field: "Idempotency-Key", Message: "printable ASCII without spaces"})
		}
	}
	return k, nil
}

// idempotencyOwner scopes keys to one publisher identity, so two
// publishers cannot collide or read each other's answers, while one
// publisher's tokens share its keys however they spell it.
func idempotencyOwner(id auth.Identity) string { return publisherKey(id) }

// publisherKey names a caller as one identity: an employee by their ID
// (whichever login their token used, in whatever case), a service by its
// issuer and its subject in canonical form (store.NormalizeLogin). Keys of
// idempotency and of the publish rate limit.
func publisherKey(id auth.Identity) string {
	if id.Kind == auth.KindEmployee {
		return "employee:" + strconv.FormatInt(id.Employee.ID, 10)
	}
	return "service:" + id.Issuer + "|" + store.NormalizeLogin(id.Subject)
}

// fingerprint identifies a request's meaning: the parsed body with its
// defaults filled in (canonical), re-encoded, so a retry that only changes
// spacing, key order or spells out a default still matches.
func fingerprint(req publishRequest) string {
	b, _ := json.Marshal(req.canonical())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical returns req with every default written out and every empty
// value in one form: persist absent is true, event absent is
// "notification", data absent, null or {} is absent, empty target lists are
// absent, data's keys are sorted, and times are in UTC to the millisecond
// (url and required are compared as given; required absent is false). An optional field added to the
// request needs its default here too.
func (req publishRequest) canonical() publishRequest {
	persist := req.Persist == nil || *req.Persist
	req.Persist = &persist
	if req.Event == "" {
		req.Event = "notification"
	}
	if req.To != nil {
		t := *req.To
		t.Employees = nilIfEmpty(t.Employees)
		t.Emails = nilIfEmpty(t.Emails)
		t.Roles = nilIfEmpty(t.Roles)
		req.To = &t
	}
	req.ExpiresAt = canonicalTime(req.ExpiresAt)
	req.DeliverAt = canonicalTime(req.DeliverAt)
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(req.Data))
	dec.UseNumber()
	switch err := dec.Decode(&data); {
	case err != nil || len(data) == 0:
		req.Data = nil
	default:
		req.Data, _ = json.Marshal(data) // maps marshal with sorted keys
	}
	return req
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
