package handlers

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/corp/herald/store"
)

// typePrefixPattern is a muted or filtered prefix: "build.*".
var typePrefixPattern = regexp.MustCompile(`^[a-z0-9_.-]{0,63}\.\*$`)

// validTypePattern reports whether s is a type or a prefix ending in ".*".
func validTypePattern(s string) bool {
	return isTypeName(s, false) || typePrefixPattern.MatchString(s)
}

type countsResponse struct {
	UnreadCount int `json:"unread_count"`
	UnseenCount int `json:"unseen_count"`
}

// counts serves GET /notifications/counts.
func (h *Handler) counts(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	c, err := h.store.Counts(r.Context(), id.Employee.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, countsResponse{UnreadCount: c.Unread, UnseenCount: c.Unseen})
	return nil
}

// withdraw serves DELETE /notifications/{id}: the publisher identity that
// published notification id takes it back from every recipient. Any other
// id, someone else's included, is 404, so ids are not revealed.
func (h *Handler) withdraw(w http.ResponseWriter, r *http.Request) error {
	id, err := publisherOnly(r)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || n <= 0 {
		return notFound("no notification " + strconv.Quote(chi.URLParam(r, "id")) + " of yours")
	}
	if err := h.store.Withdraw(r.Context(), publisherKey(id), n); err != nil {
		return err
	}
	h.metrics.withdrawn.Inc()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// preferencesBody is GET /preferences's answer and PUT /preferences's
// body. PUT replaces: a field left out takes its default (nothing muted,
// push on).
type preferencesBody struct {
	Muted []string `json:"muted"`
	Push  *bool    `json:"push"`
}

func preferencesOut(p store.Preferences) preferencesBody {
	muted := p.Muted
	if muted == nil {
		muted = []string{}
	}
	return preferencesBody{Muted: muted, Push: &p.Push}
}

// preferences serves GET /preferences.
func (h *Handler) preferences(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	p, err := h.store.Preferences(r.Context(), id.Employee.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, preferencesOut(p))
	return nil
}

// putPreferences serves PUT /preferences.
func (h *Handler) putPreferences(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	var req preferencesBody
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	p, err := req.validate()
	if err != nil {
		return err
	}
	if err := h.store.SetPreferences(r.Context(), id.Employee.ID, p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, preferencesOut(p))
	return nil
}

func (req preferencesBody) validate() (store.Preferences, error) {
	p := store.DefaultPreferences()
	if req.Push != nil {
		p.Push = *req.Push
	}
	var errs []FieldError
	if len(req.Muted) > store.MaxMuted {
		errs = append(errs, FieldError{Field: "muted", Message: fmt.Sprintf("at most %d patterns", store.MaxMuted)})
	}
	for i, m := range req.Muted {
		if !validTypePattern(m) {
			errs = append(errs, FieldError{Field: fmt.Sprintf("muted[%d]", i), Message: `must be a type ([a-z0-9_.-]{1,64}) or a prefix ending in ".*"`})
		} else if !slices.Contains(p.Muted, m) {
			p.Muted = append(p.Muted, m)
		}
	}
	if len(errs) > 0 {
		return store.Preferences{}, badRequest("the preferences are invalid", errs...)
	}
	return p, nil
}
