package handlers

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPublishLimitsAccepted: every limit of a publish admits a value
// exactly at it (the tests of the refusals are one past it), and every
// character a name may hold is admitted.
func TestPublishLimitsAccepted(t *testing.T) {
	now := time.Now()
	str := func(s string) *string { return &s }
	valid := func() publishRequest {
		return publishRequest{To: &publishTargets{Employees: []int64{2}}, Type: str("t"), Title: str("ok")}
	}
	ephemeral := func(r publishRequest) publishRequest { f := false; r.Persist = &f; return r }
	data := func(n int) json.RawMessage { // an object of exactly n bytes
		return json.RawMessage(`{"k":"` + strings.Repeat("d", n-len(`{"k":""}`)) + `"}`)
	}
	tests := []struct {
		name string
		edit func(*publishRequest)
	}{
		{"employee 1", func(r *publishRequest) { r.To.Employees = []int64{1} }},
		{"type of 64", func(r *publishRequest) { r.Type = str(strings.Repeat("a", 64)) }},
		{"type of 1", func(r *publishRequest) { r.Type = str("z") }},
		{"type of every class", func(r *publishRequest) { r.Type = str("az09_.-") }},
		{"title of 200", func(r *publishRequest) { r.Title = str(strings.Repeat("é", 200)) }},
		{"body of 10000", func(r *publishRequest) { r.Body = strings.Repeat("é", 10000) }},
		{"data of 16 KiB", func(r *publishRequest) { r.Data = data(16 << 10) }},
		{"role of 100", func(r *publishRequest) { r.To.Roles = []string{strings.Repeat("é", 100)} }},
		{"role with a space and a tilde", func(r *publishRequest) { r.To.Roles = []string{"a b~"} }},
		{"email of 254", func(r *publishRequest) {
			r.To.Emails = []string{strings.Repeat("a", 254-len("@corp.example")) + "@corp.example"}
		}},
		{"url of 2048", func(r *publishRequest) { r.URL = "/" + strings.Repeat("a", 2047) }},
		{"url with every printable", func(r *publishRequest) { r.URL = "https://corp.example/!~" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(&r)
			if _, _, err := r.validate(now); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	t.Run("event of every class", func(t *testing.T) {
		r := ephemeral(valid())
		r.Event = "AZaz09_.-"
		if _, persist, err := r.validate(now); err != nil || persist {
			t.Fatalf("ephemeral with event %q: persist %v, %v", r.Event, persist, err)
		}
	})
	t.Run("event of 64", func(t *testing.T) {
		r := ephemeral(valid())
		r.Event = strings.Repeat("Z", 64)
		if _, _, err := r.validate(now); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
}

// TestIdempotencyKeyLimits: a key of exactly 255 characters, and the first
// and last printable ASCII characters, are admitted.
func TestIdempotencyKeyLimits(t *testing.T) {
	for _, k := range []string{strings.Repeat("k", 255), "!", "~", "!key~"} {
		r, _ := http.NewRequest(http.MethodPost, "/notifications", nil)
		r.Header.Set("Idempotency-Key", k)
		got, err := idempotencyKey(r)
		if err != nil || got != k {
			t.Errorf("key %q (%d characters): got %q, %v; want it admitted", k, len(k), got, err)
		}
	}
	for _, k := range []string{strings.Repeat("k", 256), " k", "k\x7f", "k\x20"} {
		r, _ := http.NewRequest(http.MethodPost, "/notifications", nil)
		r.Header.Set("Idempotency-Key", k)
		if _, err := idempotencyKey(r); err == nil {
			t.Errorf("key %q admitted, want refused", k)
		}
	}
}

// TestResumeFromZero: an event id of 0 (the start) is a resume point, in the
// header, the query parameter and a Socket.IO auth object.
func TestResumeFromZero(t *testing.T) {
	for _, tc := range []struct{ header, query string }{{"0", ""}, {"", "0"}, {" 0 ", ""}} {
		r, _ := http.NewRequest(http.MethodGet, "/events?lastEventId="+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Last-Event-ID", tc.header)
		}
		after, ok, err := resumePoint(r)
		if err != nil || !ok || after != 0 {
			t.Errorf("header %q, query %q: %d %v %v, want 0 true nil", tc.header, tc.query, after, ok, err)
		}
	}
	for _, raw := range []string{`0`, `"0"`} {
		after, ok, err := sioResumePoint(json.RawMessage(raw))
		if err != nil || !ok || after != 0 {
			t.Errorf("lastEventId %s: %d %v %v, want 0 true nil", raw, after, ok, err)
		}
	}
}

// TestPublishDataCompacted: data given with spaces and line breaks is
// stored without them, so it travels on one SSE data: line.
func TestPublishDataCompacted(t *testing.T) {
	ty, ti := "t", "x"
	r := publishRequest{To: &publishTargets{All: true}, Type: &ty, Title: &ti,
		Data: json.RawMessage("{\"a\": 1,\n  \"b\": [1, 2],\r\n \"c\": {\"d\": \"e f\"}}")}
	m, _, err := r.validate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":1,"b":[1,2],"c":{"d":"e f"}}`; string(m.Data) != want {
		t.Fatalf("data %q, want %q", m.Data, want)
	}
}
