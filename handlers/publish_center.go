package handlers

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// centerFields are the validated notification-center fields of a publish.
type centerFields struct {
	URL       string
	ExpiresAt *time.Time
	DeliverAt *time.Time // nil when absent or not in the future: at once
	Required  bool
}

// centerFields checks url, expires_at, deliver_at and required, reporting
// each problem through add. With now nil it leaves out the checks relative
// to the time of the request (see validApartFromNow).
func (req *publishRequest) centerFields(now *time.Time, persist bool, add func(field, msg string)) centerFields {
	out := centerFields{URL: req.URL, Required: req.Required}
	if !persist {
		for _, f := range []struct {
			name string
			set  bool
		}{{"url", req.URL != ""}, {"expires_at", req.ExpiresAt != nil}, {"deliver_at", req.DeliverAt != nil}, {"required", req.Required}} {
			if f.set {
				add(f.name, `only persisted notifications take it (not with "persist": false)`)
			}
		}
		return out
	}
	if req.URL != "" {
		if msg := checkURL(req.URL); msg != "" {
			add("url", msg)
		}
	}
	if req.DeliverAt != nil {
		switch t, err := parseTime(*req.DeliverAt); {
		case err != nil:
			add("deliver_at", "must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
		case now == nil:
		case t.After(now.Add(maxSchedule)):
			add("deliver_at", "at most 30 days ahead")
		case t.After(*now):
			out.DeliverAt = &t
		}
	}
	if req.ExpiresAt != nil {
		switch t, err := parseTime(*req.ExpiresAt); {
		case err != nil:
			add("expires_at", "must be an RFC 3339 time, e.g. 2026-12-31T23:59:59Z")
		case now == nil:
		case !t.After(*now):
			add("expires_at", "must be in the future")
		case t.After(now.UTC().AddDate(maxExpiryYears, 0, 0)):
			add("expires_at", "at most 1 year ahead")
		case out.DeliverAt != nil && !t.After(*out.DeliverAt):
			add("expires_at", "must be after deliver_at")
		default:
			out.ExpiresAt = &t
		}
	}
	return out
}

// checkURL returns why u is not a link Herald hands to browsers: an
// absolute http(s) URL with a host, or a path starting with one "/" (not
// "//", which browsers read as another host). Anything else, javascript:
// and data: included, is refused.
func checkURL(u string) string {
	const want = `must be an absolute http(s):// URL or a path starting with "/"`
	switch {
	case utf8.RuneCountInString(u) > maxURL:
		return fmt.Sprintf("at most %d characters", maxURL)
	case strings.ContainsFunc(u, func(r rune) bool { return r <= 0x20 || r == 0x7f || r == '\\' }):
		return "must not contain spaces, control characters or backslashes"
	case strings.HasPrefix(u, "//"):
		return want
	case strings.HasPrefix(u, "/"):
		if _, err := url.Parse(u); err != nil {
			return want
		}
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Opaque != "" {
		return want
	}
	return ""
}

// parseTime reads an RFC 3339 time, to the store's precision.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// canonicalTime writes a time field in one form for fingerprints.
func canonicalTime(s *string) *string {
	if s == nil {
		return nil
	}
	t, err := parseTime(*s)
	if err != nil {
		return s
	}
	f := formatTime(t)
	return &f
}
