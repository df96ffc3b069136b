package store

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// NormalizeLogin returns the form in which emails and usernames are stored
// and matched: trimmed and lower-cased.
func NormalizeLogin(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// NormalizeRoles returns roles trimmed, without empties or duplicates, sorted.
// Roles are case-sensitive ("Notifications.Publish" is not "notifications.publish").
func NormalizeRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MissingIDs returns the IDs of given that are not in known, in the order
// given, each once.
func MissingIDs(given []int64, known map[int64]bool) []int64 {
	var out []int64
	seen := make(map[int64]bool, len(given))
	for _, id := range given {
		if !known[id] && !seen[id] {
			out = append(out, id)
		}
		seen[id] = true
	}
	return out
}

// MissingEmails returns the emails of given whose normalized form is not in
// known, as given, each once.
func MissingEmails(given []string, known map[string]bool) []string {
	var out []string
	seen := make(map[string]bool, len(given))
	for _, e := range given {
		n := NormalizeLogin(e)
		if !known[n] && !seen[n] {
			out = append(out, e)
		}
		seen[n] = true
	}
	return out
}

// storedResult is how a publish answer is kept for idempotent retries.
type storedResult struct {
	ID         int64    `json:"id"`
	Recipients int      `json:"recipients"`
	Employees  []int64  `json:"unknown_employees,omitempty"`
	Emails     []string `json:"unknown_emails,omitempty"`
}

// EncodeResult serializes a publish answer for the idempotency table.
func EncodeResult(r PublishResult) string {
	b, _ := json.Marshal(storedResult{r.NotificationID, r.Recipients, r.Unknown.Employees, r.Unknown.Emails})
	return string(b)
}

// DecodeResult restores an answer saved by EncodeResult, marked Replayed.
func DecodeResult(s string) (PublishResult, error) {
	var sr storedResult
	if err := json.Unmarshal([]byte(s), &sr); err != nil {
		return PublishResult{}, err
	}
	return PublishResult{
		NotificationID: sr.ID,
		Recipients:     sr.Recipients,
		Unknown:        Unknown{Employees: sr.Employees, Emails: sr.Emails},
		Replayed:       true,
	}, nil
}

// Millis converts a time to Unix milliseconds, the stores' time unit.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts Unix milliseconds to a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// EphemeralFor builds the ephemeral delivery of m to the resolved employees
// ids. With All set the IDs are left out: every stream matches anyway.
func EphemeralFor(m Message, ids []int64, now time.Time) Ephemeral {
	e := Ephemeral{
		Event: m.Event, Type: m.Type, Title: m.Title, Body: m.Body, Data: m.Data,
		CreatedAt: now, Roles: m.To.Roles, All: m.To.All,
	}
	if !m.To.All {
		e.Employees = ids
	}
	return e
}
