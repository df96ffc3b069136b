package store

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// NormalizeLogin returns the canonical form of a login (an email or a
// username), in which logins are stored and compared: without surrounding
// ASCII white space, and with the ASCII letters A–Z folded to a–z; every
// other character stays as it is.
//
// The folding is ASCII-only on purpose. Unicode case mapping folds
// look-alikes onto letters (strings.ToLower turns the Kelvin sign U+212A
// into "k"), so a token for "\u212Aen" would open ken's inbox. SQL folds the
// same way (SQLite's built-in lower(); PostgreSQL's herald_fold_login, which
// is translate() over A–Z), and the stores' login tables refuse a value that
// SQL would fold further, so Go and SQL cannot disagree on what a login is.
func NormalizeLogin(s string) string {
	s = strings.Trim(s, " \t\n\v\f\r")
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return foldASCII(s, i)
		}
	}
	return s
}

// foldASCII folds s's ASCII capitals from byte i on, which is the first.
func foldASCII(s string, i int) string {
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Logins returns e's distinct logins (username, then email), each already
// canonical (see NormalizeLogin).
func (e Employee) Logins() []string {
	var out []string
	for _, l := range []string{e.Username, e.Email} {
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// LoginField returns which field of e holds login: "username" or "email".
func (e Employee) LoginField(login string) string {
	if login == e.Username {
		return "username"
	}
	return "email"
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
	DeliverAt  int64    `json:"deliver_at,omitempty"` // Unix milliseconds
}

// EncodeResult serializes a publish answer for the idempotency table.
func EncodeResult(r PublishResult) string {
	sr := storedResult{ID: r.NotificationID, Recipients: r.Recipients, Employees: r.Unknown.Employees, Emails: r.Unknown.Emails}
	if r.DeliverAt != nil {
		sr.DeliverAt = Millis(*r.DeliverAt)
	}
	b, _ := json.Marshal(sr)
	return string(b)
}

// DecodeResult restores an answer saved by EncodeResult, marked Replayed.
func DecodeResult(s string) (PublishResult, error) {
	var sr storedResult
	if err := json.Unmarshal([]byte(s), &sr); err != nil {
		return PublishResult{}, err
	}
	res := PublishResult{
		NotificationID: sr.ID,
		Recipients:     sr.Recipients,
		Unknown:        Unknown{Employees: sr.Employees, Emails: sr.Emails},
		Replayed:       true,
	}
	if sr.DeliverAt != 0 {
		t := FromMillis(sr.DeliverAt)
		res.DeliverAt = &t
	}
	return res, nil
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
