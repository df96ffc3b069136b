package handlers_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestInvalidUTF8Refused: a body that is not valid UTF-8 is refused with
// 422 naming the field, and stores nothing (issue 14, row 4: invalid bytes
// inside data were stored as sent, and every WebSocket frame carrying them
// was refused by browsers; in strings they were silently replaced).
func TestInvalidUTF8Refused(t *testing.T) {
	e := newEnv(t)
	const bad = "\xff\xfe"
	tests := []struct {
		name, path, body string
		token            string
		field            string
	}{
		{"data", "/notifications", `{"to":{"employees":[2]},"type":"t","title":"x","data":{"k":"` + bad + `"}}`, e.service(), "data"},
		{"data key", "/notifications", `{"to":{"employees":[2]},"type":"t","title":"x","data":{"` + bad + `":1}}`, e.service(), "data"},
		{"title", "/notifications", `{"to":{"employees":[2]},"type":"t","title":"x` + bad + `"}`, e.service(), "title"},
		{"body", "/notifications", `{"to":{"employees":[2]},"type":"t","title":"x","body":"` + bad + `"}`, e.service(), "body"},
		{"type", "/notifications", `{"to":{"employees":[2]},"type":"t` + bad + `","title":"x"}`, e.service(), "type"},
		{"an email target", "/notifications", `{"to":{"emails":["a` + bad + `@corp.example"]},"type":"t","title":"x"}`, e.service(), "to.emails[0]"},
		{"employee name", "/employees/9", `{"username":"nine","name":"N` + bad + `"}`, e.directory(), "name"},
		{"mark read", "/notifications/read", `{"ids":["` + bad + `"]}`, e.token("user2"), "ids[0]"},
	}
	for _, tt := range tests {
		method := http.MethodPost
		if strings.HasPrefix(tt.path, "/employees/") {
			method = http.MethodPut
		}
		status, _, out := e.do(method, tt.path, tt.token, []byte(tt.body))
		p := problem(t, out)
		if status != http.StatusUnprocessableEntity || p.Code != "invalid_request" || !slices.Equal(p.Fields(), []string{tt.field}) {
			t.Errorf("%s: %d %s, want 422 invalid_request naming %s", tt.name, status, out, tt.field)
		}
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 0 {
		t.Fatalf("a refused publish was stored: head %d", head)
	}
	if _, err := e.Store.Employee(t.Context(), 9); err == nil {
		t.Fatal("a refused PUT created employee 9")
	}
	// Valid UTF-8 beyond ASCII is fine, escaped or not.
	status, _, out := e.do(http.MethodPost, "/notifications", e.service(),
		[]byte(`{"to":{"employees":[2]},"type":"t","title":"Añorada ✓","data":{"emoji":"\ud83d\ude00 😀"}}`))
	if status != http.StatusCreated {
		t.Fatalf("valid UTF-8: %d %s", status, out)
	}
}

// TestIdempotencyDefaultsCountAsGiven: a retry that spells out a default
// (persist true, event "notification", empty data) is the same request
// (issue 14, row 16: "persist": true and no persist got 422 on a retry).
func TestIdempotencyDefaultsCountAsGiven(t *testing.T) {
	e := newEnv(t)
	first := `{"to":{"employees":[2]},"type":"t","title":"once"}`
	status, _, out1 := e.do(http.MethodPost, "/notifications", e.service(), []byte(first), "Idempotency-Key", "k-1")
	if status != http.StatusCreated {
		t.Fatalf("first: %d %s", status, out1)
	}
	for _, retry := range []string{
		`{"to":{"employees":[2]},"type":"t","title":"once","persist":true}`,
		`{"to":{"employees":[2],"emails":[],"roles":[],"all":false},"type":"t","title":"once","body":"","data":{},"event":"notification"}`,
	} {
		status, h, out := e.do(http.MethodPost, "/notifications", e.service(), []byte(retry), "Idempotency-Key", "k-1")
		if status != http.StatusCreated || h.Get("Idempotent-Replayed") != "true" || string(out) != string(out1) {
			t.Errorf("retry %s: %d %s (replayed %q), want the first answer", retry, status, out, h.Get("Idempotent-Replayed"))
		}
	}
	status, _, out := e.do(http.MethodPost, "/notifications", e.service(),
		[]byte(`{"to":{"employees":[2]},"type":"t","title":"once","persist":false}`), "Idempotency-Key", "k-1")
	if status != http.StatusUnprocessableEntity {
		t.Errorf("persist false is another request: %d %s, want 422", status, out)
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 1 {
		t.Fatalf("retries stored again: head %d", head)
	}
}

// TestIdempotencyScopedByIdentity: keys belong to the publisher identity
// (the employee, or the service), not to the spelling of its token's claim
// (issue 14, row 16: "ana" and "ANA" had two scopes).
func TestIdempotencyScopedByIdentity(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "once"}
	for _, group := range [][]string{
		{e.token("user1"), e.token("USER1"), e.token("User1@Corp.Example")}, // employee 1, an admin
		{e.token("billing", "service"), e.token("BILLING", "service")},
	} {
		var first string
		for i, tok := range group {
			status, h, out := e.do(http.MethodPost, "/notifications", tok, body, "Idempotency-Key", "same-key")
			if status != http.StatusCreated {
				t.Fatalf("publish %d: %d %s", i, status, out)
			}
			if i == 0 {
				first = string(out)
				continue
			}
			if h.Get("Idempotent-Replayed") != "true" || string(out) != first {
				t.Errorf("token %d of one publisher: %s (replayed %q), want the first answer %s", i, out, h.Get("Idempotent-Replayed"), first)
			}
		}
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 2 {
		t.Fatalf("employee 2 got %d notifications, want 2 (one per publisher)", head)
	}
}

// TestMetricLabelsBounded: made-up methods and paths do not grow /metrics
// (issue 14, row 3: 20,000 invented methods grew it to 29.5 MB).
func TestMetricLabelsBounded(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		method := "M" + strings.Repeat("X", i%7) + string(rune('A'+i%26)) + "Z"
		for _, path := range []string{"/notifications", "/healthz", "/nope/" + method} {
			req, err := http.NewRequest(method, e.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var series []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "herald_http_requests_total{") {
			series = append(series, line)
		}
		if strings.Contains(line, "MXA") || strings.Contains(line, "/nope/") {
			t.Fatalf("a client's method or path became a label: %s", line)
		}
	}
	if len(series) > 10 {
		t.Fatalf("%d request series after 150 odd requests, want a handful:\n%s", len(series), strings.Join(series, "\n"))
	}
	if !slices.ContainsFunc(series, func(s string) bool { return strings.Contains(s, `method="other"`) }) {
		t.Fatalf("odd methods not counted as other:\n%s", strings.Join(series, "\n"))
	}
}

// TestReadyzDetailNeedsToken: /readyz says why it is not ready only to a
// caller with a valid token (issue 14, row 12: it showed internal errors
// such as "dial tcp 127.0.0.1:55432: connect: connection refused" to
// anyone).
func TestReadyzDetailNeedsToken(t *testing.T) {
	e := newEnv(t)
	e.Store.Close()
	for _, tt := range []struct {
		name     string
		header   []string
		detailed bool
	}{
		{"no token", nil, false},
		{"invalid token", []string{"Authorization", "Bearer not-a-token"}, false},
		{"valid token of nobody", []string{"Authorization", "Bearer " + e.token("ghost")}, true},
		{"valid cookie", []string{"Cookie", "token=" + e.token("user2")}, true},
	} {
		status, h, out := e.do(http.MethodGet, "/readyz", "", nil, tt.header...)
		p := problem(t, out)
		internal := strings.Contains(p.Detail, "closed")
		if status != http.StatusServiceUnavailable || p.Code != "unavailable" || h.Get("Retry-After") == "" || internal != tt.detailed {
			t.Errorf("%s: %d %s (Retry-After %q), want 503 with internal detail %v", tt.name, status, out, h.Get("Retry-After"), tt.detailed)
		}
	}
}

// TestMembersMatchExactly: a member whose name matches a field only when
// case is ignored is an unknown field, as the API document says (the
// employee fuzz target found "emAil" accepted as "email").
func TestMembersMatchExactly(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		path, token, body, field string
	}{
		{"/notifications", e.service(), `{"to":{"employees":[2]},"type":"t","Title":"x"}`, "Title"},
		{"/notifications", e.service(), `{"to":{"Employees":[2]},"type":"t","title":"x"}`, "to.Employees"},
		{"/employees/9", e.directory(), `{"emAil":"nine@corp.example"}`, "emAil"},
	} {
		method := http.MethodPost
		if strings.HasPrefix(tt.path, "/employees/") {
			method = http.MethodPut
		}
		status, _, out := e.do(method, tt.path, tt.token, []byte(tt.body))
		if p := problem(t, out); status != http.StatusBadRequest || !slices.Equal(p.Fields(), []string{tt.field}) {
			t.Errorf("%s %s: %d %s, want 400 naming %s", method, tt.body, status, out, tt.field)
		}
	}
}
