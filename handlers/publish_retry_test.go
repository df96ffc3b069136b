package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIdempotentRetryAfterItsTimes: a retry (same Idempotency-Key, same
// meaning) made after the deliver_at or expires_at it carries has passed
// gets the first answer as it was, deliver_at included, and creates
// nothing; a key reused for another body is still refused, and a new key
// with a past expires_at is still invalid.
func TestIdempotentRetryAfterItsTimes(t *testing.T) {
	e := newEnv(t)
	// Far enough ahead that the first publishes run before it, even on a
	// loaded machine (there is no clock to move: the test waits for it).
	at := time.Now().Add(3 * time.Second).UTC().Truncate(time.Millisecond)
	scheduled := map[string]any{"to": map[string]any{"employees": []int{2, 77}}, "type": "a.b", "title": "later",
		"deliver_at": at.Format(time.RFC3339Nano)}
	expiring := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "brief",
		"expires_at": at.Format(time.RFC3339Nano)}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{k: v}
		for mk, mv := range m {
			if mk != k {
				out[mk] = mv
			}
		}
		return out
	}
	first := map[string]string{}
	for key, body := range map[string]map[string]any{"sched": scheduled, "exp": expiring} {
		status, out := e.publish(body, "Idempotency-Key", key)
		if status != http.StatusCreated {
			t.Fatalf("first publish %s: %d %s", key, status, out)
		}
		first[key] = string(out)
	}
	if want := `"deliver_at":"` + at.Format("2006-01-02T15:04:05.000Z07:00") + `"`; !strings.Contains(first["sched"], want) {
		t.Fatalf("scheduled answer %s; want it with %s", first["sched"], want)
	}
	time.Sleep(time.Until(at) + 50*time.Millisecond)

	tests := []struct {
		name     string
		key      string
		body     map[string]any
		status   int
		want     string // the answer, for a replay
		fields   string // the problem's fields, for a refusal
		messages string
	}{
		{name: "scheduled, after deliver_at", key: "sched", body: scheduled, status: 201, want: first["sched"]},
		{name: "expiring, after expires_at", key: "exp", body: expiring, status: 201, want: first["exp"]},
		{name: "expiring, same meaning spelled otherwise", key: "exp",
			body:   with(with(expiring, "expires_at", at.In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano)), "persist", true),
			status: 201, want: first["exp"]},
		{name: "expiring, another body", key: "exp", body: with(expiring, "title", "other"),
			status: 422, fields: "Idempotency-Key", messages: "already used with a different request body"},
		{name: "expiring, another body invalid anyway", key: "exp", body: with(expiring, "type", "A"),
			status: 400, fields: "type,expires_at", messages: "must match [a-z0-9_.-]{1,64},must be in the future"},
		{name: "new key, past expires_at", key: "fresh", body: expiring,
			status: 400, fields: "expires_at", messages: "must be in the future"},
		{name: "no key, past expires_at", body: expiring,
			status: 400, fields: "expires_at", messages: "must be in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.key != "" {
				hdr = []string{"Idempotency-Key", tt.key}
			}
			status, h, out := e.do(http.MethodPost, "/notifications", e.service(), tt.body, hdr...)
			if status != tt.status {
				t.Fatalf("status %d %s; want %d", status, out, tt.status)
			}
			if tt.want != "" {
				if string(out) != tt.want || h.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("answer %s (Idempotent-Replayed %q); want the first answer %s, replayed", out, h.Get("Idempotent-Replayed"), tt.want)
				}
				return
			}
			p := problem(t, out)
			var msgs []string
			for _, fe := range p.Errors {
				msgs = append(msgs, fe.Message)
			}
			if got := strings.Join(p.Fields(), ","); got != tt.fields || strings.Join(msgs, ",") != tt.messages || p.Code != "invalid_request" {
				t.Fatalf("problem %s; want invalid_request on %s (%s)", out, tt.fields, tt.messages)
			}
		})
	}
	// The retries created nothing: the next notification is the third.
	if got := e.mustPublish("next", 2); got.ID != "3" {
		t.Fatalf("next publish got id %s; want 3 (the retries stored nothing)", got.ID)
	}
}

// TestPublishExpiresAtLimit: expires_at may be one calendar year ahead,
// not a day more.
func TestPublishExpiresAtLimit(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		at     func(now time.Time) time.Time
		status int
	}{
		{"one year ahead", func(now time.Time) time.Time { return now.AddDate(1, 0, 0) }, 201},
		{"one year and a day ahead", func(now time.Time) time.Time { return now.AddDate(1, 0, 1) }, 400},
		{"one year and a minute ahead", func(now time.Time) time.Time { return now.AddDate(1, 0, 0).Add(time.Minute) }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server's now is a little later than this one: the year
			// it allows ends a little later too.
			exp := tt.at(time.Now().UTC()).Truncate(time.Millisecond)
			status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x",
				"expires_at": exp.Format(time.RFC3339Nano)})
			if status != tt.status {
				t.Fatalf("expires_at %s: %d %s; want %d", exp.Format(time.RFC3339Nano), status, out, tt.status)
			}
			if status == 400 {
				p := problem(t, out)
				if p.Code != "invalid_request" || len(p.Errors) != 1 || p.Errors[0].Field != "expires_at" || p.Errors[0].Message != "at most 1 year ahead" {
					t.Fatalf("problem %s; want invalid_request on expires_at: at most 1 year ahead", out)
				}
			}
		})
	}
}

// TestPublishURLLengthInCharacters: url's 2,048 are characters, not bytes.
func TestPublishURLLengthInCharacters(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		url    string
		status int
	}{
		{"2,048 ASCII characters", "/" + strings.Repeat("a", 2047), 201},
		{"2,049 ASCII characters", "/" + strings.Repeat("a", 2048), 400},
		{"2,048 characters, 4,095 bytes", "/" + strings.Repeat("é", 2047), 201},
		{"2,049 characters, 4,097 bytes", "/" + strings.Repeat("é", 2048), 400},
		{"https URL of 2,048 characters, 6,094 bytes", "https://intranet.example/" + strings.Repeat("€", 2048-25), 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x", "url": tt.url})
			if status != tt.status {
				t.Fatalf("url of %d bytes: %d %s; want %d", len(tt.url), status, out, tt.status)
			}
			if status == 400 {
				p := problem(t, out)
				if p.Code != "invalid_request" || len(p.Errors) != 1 || p.Errors[0].Field != "url" || p.Errors[0].Message != "at most 2048 characters" {
					t.Fatalf("problem %s; want invalid_request on url: at most 2048 characters", out)
				}
			}
		})
	}
}
