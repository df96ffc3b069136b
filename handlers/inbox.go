package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/corp/herald/store"
)

// Inbox paging.
const (
	defaultInboxLimit = 50
	maxInboxLimit     = 200
	maxReadIDs        = 1000
)

type inboxResponse struct {
	Notifications []inboxItem `json:"notifications"`
	UnreadCount   int         `json:"unread_count"`
	UnseenCount   int         `json:"unseen_count"`
	// NextBefore is the before= value of the next (older) page; absent on
	// the last page.
	NextBefore string `json:"next_before,omitempty"`
}

// inbox serves GET /notifications: the caller's own inbox, newest first.
func (h *Handler) inbox(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	q, err := inboxQuery(r)
	if err != nil {
		return err
	}
	q.Employee = id.Employee.ID
	page, err := h.store.Inbox(r.Context(), q)
	if err != nil {
		return err
	}
	resp := inboxResponse{Notifications: make([]inboxItem, len(page.Items)), UnreadCount: page.UnreadCount, UnseenCount: page.UnseenCount}
	for i, it := range page.Items {
		resp.Notifications[i] = toInboxItem(it)
	}
	if page.More && len(page.Items) > 0 {
		resp.NextBefore = strconv.FormatInt(page.Items[len(page.Items)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func inboxQuery(r *http.Request) (store.InboxQuery, error) {
	q := store.InboxQuery{Limit: defaultInboxLimit}
	var errs []FieldError
	v := r.URL.Query()
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, FieldError{Field: "before", Message: "must be a notification id (a positive integer)"})
		}
		q.Before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxInboxLimit {
			errs = append(errs, FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxInboxLimit)})
		}
		q.Limit = n
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"unread", &q.UnreadOnly}, {"unseen", &q.UnseenOnly}, {"archived", &q.Archived}} {
		if s := v.Get(f.name); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				errs = append(errs, FieldError{Field: f.name, Message: "must be true or false"})
			}
			*f.dst = b
		}
	}
	if v.Has("type") {
		q.Type = v.Get("type")
		if !validTypePattern(q.Type) {
			errs = append(errs, FieldError{Field: "type", Message: `must be a type ([a-z0-9_.-]{1,64}) or a prefix ending in ".*"`})
		}
	}
	if len(errs) > 0 {
		return q, badRequest("invalid query parameters", errs...)
	}
	return q, nil
}

// readRequest is the body of POST /notifications/read. IDs are the ids the
// stream and the inbox show (strings), or the same as JSON integers.
type readRequest struct {
	IDs []json.RawMessage `json:"ids"`
	All *bool             `json:"all"`
}

type readResponse struct {
	Marked      int `json:"marked"`
	UnreadCount int `json:"unread_count"`
	UnseenCount int `json:"unseen_count"`
}

// setState serves POST /notifications/{read,unread,seen,archive,unarchive,delete}.
// Ids that are not the caller's are ignored: the answer counts only the
// caller's own notifications, so it reveals nothing about anyone else's.
func (h *Handler) setState(op store.StateOp) apiHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := employeeOnly(r)
		if err != nil {
			return err
		}
		var req readRequest
		if _, err := readJSON(w, r, &req); err != nil {
			return err
		}
		seqs, all, err := req.validate()
		if err != nil {
			return err
		}
		marked, c, err := h.store.SetState(r.Context(), id.Employee.ID, op, seqs, all)
		if err != nil {
			return err
		}
		h.metrics.stateChanges.WithLabelValues(string(op)).Add(float64(marked))
		writeJSON(w, http.StatusOK, readResponse{Marked: marked, UnreadCount: c.Unread, UnseenCount: c.Unseen})
		return nil
	}
}

func (req readRequest) validate() ([]int64, bool, error) {
	all := req.All != nil && *req.All
	switch {
	case req.IDs == nil && req.All == nil:
		return nil, false, badRequest(`send {"ids": [...]} or {"all": true}`, FieldError{Field: "ids", Message: "required unless all is true"})
	case req.IDs != nil && req.All != nil:
		return nil, false, badRequest(`send either ids or all, not both`, FieldError{Field: "all", Message: "not allowed together with ids"})
	case req.All != nil && !all:
		return nil, false, badRequest(`"all" must be true when given`, FieldError{Field: "all", Message: "must be true"})
	case all:
		return nil, true, nil
	case len(req.IDs) > maxReadIDs:
		return nil, false, badRequest("too many ids", FieldError{Field: "ids", Message: fmt.Sprintf("at most %d per request", maxReadIDs)})
	}
	seqs := make([]int64, 0, len(req.IDs))
	var errs []FieldError
	for i, raw := range req.IDs {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw) // a JSON number
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, FieldError{Field: fmt.Sprintf("ids[%d]", i), Message: "must be a notification id (a positive integer, as a string or a number)"})
			continue
		}
		seqs = append(seqs, n)
	}
	if len(errs) > 0 {
		return nil, false, badRequest("invalid ids", errs...)
	}
	return seqs, false, nil
}
