package handlers_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestPublishTargets(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		to         map[string]any
		recipients int
		unknown    string
	}{
		{"employees", map[string]any{"employees": []int{2, 3, 99, 2}}, 2, `[99]`},
		{"emails", map[string]any{"emails": []string{"USER4@corp.example", "ghost@corp.example"}}, 1, `["ghost@corp.example"]`},
		{"roles", map[string]any{"roles": []string{"admin"}}, 1, `[]`},
		{"all", map[string]any{"all": true}, 5, `[]`},
		{"mixed", map[string]any{"employees": []int{77}, "emails": []string{"nope@x.example"}, "roles": []string{"staff"}}, 5, `[77,"nope@x.example"]`},
		{"nobody", map[string]any{"employees": []int{404}}, 0, `[404]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.publish(map[string]any{"to": tt.to, "type": "t", "title": tt.name})
			if status != http.StatusCreated {
				t.Fatalf("status %d %s", status, out)
			}
			var ans struct {
				ID         string          `json:"id"`
				Recipients int             `json:"recipients"`
				Unknown    json.RawMessage `json:"unknown"`
			}
			json.Unmarshal(out, &ans)
			if ans.ID == "" || ans.Recipients != tt.recipients || string(ans.Unknown) != tt.unknown {
				t.Fatalf("answer %s, want %d recipients and unknown %s", out, tt.recipients, tt.unknown)
			}
		})
	}
}

// TestPublishValidation: every rule, one row each; a refused publish
// changes nothing.
func TestPublishValidation(t *testing.T) {
	e := newEnv(t)
	valid := func() map[string]any {
		return map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "ok"}
	}
	with := func(k string, v any) map[string]any { m := valid(); m[k] = v; return m }
	without := func(k string) map[string]any { m := valid(); delete(m, k); return m }
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"no to", without("to"), []string{"to"}},
		{"empty to", with("to", map[string]any{}), []string{"to"}},
		{"all false only", with("to", map[string]any{"all": false}), []string{"to"}},
		{"empty lists", with("to", map[string]any{"employees": []int{}, "emails": []string{}}), []string{"to"}},
		{"employee zero", with("to", map[string]any{"employees": []int{2, 0}}), []string{"to.employees[1]"}},
		{"employee negative", with("to", map[string]any{"employees": []int{-3}}), []string{"to.employees[0]"}},
		{"employee as string", with("to", map[string]any{"employees": []string{"2"}}), []string{"to.employees"}},
		{"employee fractional", `{"to":{"employees":[2.5]},"type":"a","title":"x"}`, []string{"to.employees"}},
		{"bad email", with("to", map[string]any{"emails": []string{"not-an-email"}}), []string{"to.emails[0]"}},
		{"email with spaces", with("to", map[string]any{"emails": []string{"a b@c.d"}}), []string{"to.emails[0]"}},
		{"empty role", with("to", map[string]any{"roles": []string{""}}), []string{"to.roles[0]"}},
		{"role too long", with("to", map[string]any{"roles": []string{strings.Repeat("r", 101)}}), []string{"to.roles[0]"}},
		{"all not bool", with("to", map[string]any{"all": "yes"}), []string{"to.all"}},
		{"unknown target", with("to", map[string]any{"groups": []string{"x"}}), []string{"groups"}},
		{"no type", without("type"), []string{"type"}},
		{"type uppercase", with("type", "Request.Approved"), []string{"type"}},
		{"type with space", with("type", "a b"), []string{"type"}},
		{"type empty", with("type", ""), []string{"type"}},
		{"type too long", with("type", strings.Repeat("a", 65)), []string{"type"}},
		{"type not string", with("type", 5), []string{"type"}},
		{"no title", without("title"), []string{"title"}},
		{"title empty", with("title", ""), []string{"title"}},
		{"title blank", with("title", "   "), []string{"title"}},
		{"title too long", with("title", strings.Repeat("é", 201)), []string{"title"}},
		{"body too long", with("body", strings.Repeat("b", 10001)), []string{"body"}},
		{"body not string", with("body", 1), []string{"body"}},
		{"NUL in title", with("title", "a\x00b"), []string{"title"}},
		{"NUL in body", with("body", "a\x00b"), []string{"body"}},
		{"data array", with("data", []int{1}), []string{"data"}},
		{"data string", with("data", "x"), []string{"data"}},
		{"data number", with("data", 3), []string{"data"}},
		{"data too big", with("data", map[string]string{"k": strings.Repeat("d", 16*1024)}), []string{"data"}},
		{"persist not bool", with("persist", "no"), []string{"persist"}},
		{"event on persisted", with("event", "custom"), []string{"event"}},
		{"event bad pattern", func() map[string]any { m := with("persist", false); m["event"] = "bad event"; return m }(), []string{"event"}},
		{"event reserved", func() map[string]any { m := with("persist", false); m["event"] = "token_expired"; return m }(), []string{"event"}},
		{"unknown field", with("tittle", "typo"), []string{"tittle"}},
		{"several at once", map[string]any{"to": map[string]any{}, "type": "X", "title": ""}, []string{"to", "type", "title"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.publish(tt.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d %s, want 400", status, out)
			}
			p := problem(t, out)
			if p.Code != "invalid_request" || p.Status != 400 || p.Type == "" || p.Title == "" || !slices.Equal(p.Fields(), tt.fields) {
				t.Fatalf("problem %+v, want invalid_request naming %v", p, tt.fields)
			}
		})
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 0 {
		t.Fatalf("refused publishes stored %d notifications", head)
	}
}

func TestPublishBodyRules(t *testing.T) {
	e := newEnv(t)
	tok := e.service()
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"form post", "application/x-www-form-urlencoded", "to=1", 415, "unsupported_media_type"},
		{"text", "text/plain", `{"title":"x"}`, 415, "unsupported_media_type"},
		{"no content type", "", `{"title":"x"}`, 415, "unsupported_media_type"},
		{"malformed", "application/json", `{"to":`, 400, "invalid_request"},
		{"not an object", "application/json", `[1,2]`, 400, "invalid_request"},
		{"empty", "application/json", ``, 400, "invalid_request"},
		{"trailing data", "application/json", `{"to":{"all":true},"type":"t","title":"x"} {}`, 400, "invalid_request"},
		{"too large", "application/json", `{"to":{"all":true},"type":"t","title":"x","body":"` + strings.Repeat("a", 65*1024) + `"}`, 413, "invalid_request"},
		{"json with charset", "application/json; charset=utf-8", `{"to":{"employees":[2]},"type":"t","title":"x"}`, 201, ""},
		{"problem+json style", "application/merge-patch+json", `{"to":{"employees":[2]},"type":"t","title":"x"}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, out := e.do("POST", "/notifications", tok, []byte(tt.body), "Content-Type", tt.contentType)
			if status != tt.status {
				t.Fatalf("status %d %s, want %d", status, out, tt.status)
			}
			if tt.code != "" {
				if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type %q", ct)
				}
				if p := problem(t, out); p.Code != tt.code {
					t.Fatalf("code %q, want %q", p.Code, tt.code)
				}
			}
		})
	}
}

func TestPublishPermissions(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	for _, tc := range []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"plain employee", e.token("user2"), 403, "forbidden"},
		{"employee with a publisher role in the directory", e.token("user1"), 201, ""},
		{"employee with a publisher role in the token", e.token("user3", "Notifications.Publish"), 201, ""},
		{"service", e.service(), 201, ""},
		{"unknown user without role", e.token("stranger"), 403, "unknown_employee"},
		{"no user, no role", e.token(""), 403, "unknown_employee"},
	} {
		status, _, out := e.do("POST", "/notifications", tc.token, body)
		if status != tc.status || (tc.code != "" && problem(t, out).Code != tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, out, tc.status, tc.code)
		}
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"to": map[string]any{"employees": []int{2, 99}}, "type": "t", "title": "once", "data": map[string]any{"a": 1, "b": 2}}
	status, h1, first := e.do("POST", "/notifications", e.service(), body, "Idempotency-Key", "order-481")
	if status != 201 || h1.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", status, first)
	}
	// Same meaning, other spacing and key order: the same answer, nothing new.
	retry := `{"title":"once","type":"t","data":{"b":2,"a":1},"to":{"employees":[2,99]}}`
	status, h2, again := e.do("POST", "/notifications", e.service(), []byte(retry), "Idempotency-Key", "order-481")
	if status != 201 || string(again) != string(first) || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s (replayed=%q), want the first answer %s", status, again, h2.Get("Idempotent-Replayed"), first)
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 1 {
		t.Fatalf("a retried publish stored again: head %d", head)
	}
	body["title"] = "different"
	status, _, out := e.do("POST", "/notifications", e.service(), body, "Idempotency-Key", "order-481")
	if status != 422 || problem(t, out).Code != "invalid_request" {
		t.Fatalf("key reused for another body: %d %s, want 422", status, out)
	}
	// Another publisher's key space is its own.
	other := e.token("other-service", "service")
	status, _, out = e.do("POST", "/notifications", other, body, "Idempotency-Key", "order-481")
	if status != 201 || string(out) == string(first) {
		t.Fatalf("other publisher, same key: %d %s", status, out)
	}
	for _, bad := range []string{strings.Repeat("k", 256), "has space", "naïve"} {
		status, _, out = e.do("POST", "/notifications", e.service(), body, "Idempotency-Key", bad)
		if status != 400 || problem(t, out).Fields()[0] != "Idempotency-Key" {
			t.Fatalf("key %q: %d %s", bad, status, out)
		}
	}
}
