package handlers_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/oidctest"
)

// sessionCookie posts /session with the bearer and returns the answer and
// the token cookie it sets (nil if none).
func sessionCookie(t *testing.T, e *env, header ...string) (int, http.Header, []byte, *http.Cookie) {
	t.Helper()
	status, hdr, body := heraldtest.Do(t, http.MethodPost, e.URL+"/session", "", nil, header...)
	resp := http.Response{Header: hdr}
	for _, c := range resp.Cookies() {
		if c.Name == "token" {
			return status, hdr, body, c
		}
	}
	return status, hdr, body, nil
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSessionCookie: an Azure bearer in, a Secure, HttpOnly, SameSite=Lax
// cookie out, good for at most an hour; a stream opened with only the
// cookie is the employee's.
func TestSessionCookie(t *testing.T) {
	e := newAzureEnv(t)
	status, hdr, body, c := sessionCookie(t, e.env, "Authorization", "Bearer "+e.user("User2@corp.example", "Notifications.Publish"))
	if status != http.StatusNoContent || c == nil || len(body) != 0 {
		t.Fatalf("POST /session: %d %v %s", status, hdr, body)
	}
	setCookie := hdr.Get("Set-Cookie")
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=", "Expires="} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, attr)
		}
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", hdr.Get("Cache-Control"))
	}
	if c.MaxAge <= 0 || c.MaxAge > 3600 {
		t.Errorf("Max-Age %d, want at most an hour", c.MaxAge)
	}
	claims := claimsOf(t, c.Value)
	if claims["user"] != "user2" || claims["rol"] != "Notifications.Publish" || claims["iss"] != "urn:herald:session" {
		t.Errorf("session token claims %v", claims)
	}
	if exp := int64(claims["exp"].(float64)); exp > time.Now().Add(time.Hour).Unix() {
		t.Errorf("session exp %d is more than an hour away", exp)
	}

	s := heraldtest.MustOpenStream(t, e.URL+"/events", "", "Cookie", "theme=dark; token="+c.Value)
	e.mustPublish("via the cookie", 2)
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != "via the cookie" {
		t.Fatalf("cookie stream got %q", heraldtest.Title(t, m))
	}
	// The cookie works on the REST routes too (same-site pages).
	if status, _, out := e.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token="+c.Value); status != 200 {
		t.Fatalf("inbox with the cookie: %d %s", status, out)
	}
}

// TestSessionNeverOutlivesBearer: the cookie of a bearer expiring in 90 s
// expires with it.
func TestSessionNeverOutlivesBearer(t *testing.T) {
	e := newAzureEnv(t)
	exp := time.Now().Add(90 * time.Second).Unix()
	tok := oidctest.Sign(t, e.iss.RSA, oidctest.With(e.iss.User("user3@corp.example"), "exp", exp))
	status, _, body, c := sessionCookie(t, e.env, "Authorization", "Bearer "+tok)
	if status != http.StatusNoContent || c == nil {
		t.Fatalf("POST /session: %d %s", status, body)
	}
	if got := int64(claimsOf(t, c.Value)["exp"].(float64)); got > exp {
		t.Fatalf("session exp %d after the bearer's %d", got, exp)
	}
	if c.MaxAge > 90 {
		t.Fatalf("Max-Age %d beyond the bearer's 90 s", c.MaxAge)
	}
}

// TestSessionExpiryEndsStream: when the session token expires, a stream
// opened with it ends with token_expired.
func TestSessionExpiryEndsStream(t *testing.T) {
	e := newAzureEnv(t, func(o *azureOptions) { o.sessionTTL = 2 * time.Second })
	_, _, body, c := sessionCookie(t, e.env, "Authorization", "Bearer "+e.user("user2@corp.example"))
	if c == nil {
		t.Fatalf("no cookie: %s", body)
	}
	s := heraldtest.MustOpenStream(t, e.URL+"/events", "", "Cookie", "token="+c.Value)
	m := s.MustNext(t, wait)
	if m.Event != "token_expired" || !strings.Contains(m.Data, `"code":"token_expired"`) {
		t.Fatalf("got %s %s, want token_expired", m.Event, m.Data)
	}
	s.WaitClosed(t, wait)
	// Reconnecting with the expired cookie is refused, so the client
	// knows to make a new session.
	_, resp, out := heraldtest.OpenStream(t, e.URL+"/events", "", "Cookie", "token="+c.Value)
	if resp.StatusCode != 401 || problem(t, out).Code != "token_expired" {
		t.Fatalf("reconnect with the expired session: %d %s", resp.StatusCode, out)
	}
}

// TestSessionRefusals: a session needs an employee's bearer token in the
// Authorization header.
func TestSessionRefusals(t *testing.T) {
	e := newAzureEnv(t)
	_, _, _, c := sessionCookie(t, e.env, "Authorization", "Bearer "+e.user("user2@corp.example"))
	for _, tt := range []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no token", nil, 401, "missing_token"},
		{"cookie only (what a cross-site form would send)", []string{"Cookie", "token=" + c.Value}, 401, "missing_token"},
		{"invalid bearer", []string{"Authorization", "Bearer x.y.z"}, 401, "invalid_token"},
		{"expired bearer", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(e.iss.User("user2@corp.example"), "exp", time.Now().Add(-5*time.Minute).Unix()))}, 401, "token_expired"},
		{"service", []string{"Authorization", "Bearer " + e.app("billing", "Notifications.Publish")}, 403, "forbidden"},
		{"unknown employee", []string{"Authorization", "Bearer " + e.user("ghost@corp.example")}, 403, "unknown_employee"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body, c := sessionCookie(t, e.env, tt.header...)
			if status != tt.status || problem(t, body).Code != tt.code || c != nil {
				t.Fatalf("got %d %s (cookie %v), want %d %s", status, body, c, tt.status, tt.code)
			}
			if wa := hdr.Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(wa, `Bearer error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate on a %d: %q", tt.status, wa)
			}
		})
	}
}

// TestSessionDelete: DELETE /session clears the cookie, with or without a
// valid token.
func TestSessionDelete(t *testing.T) {
	e := newEnv(t)
	for _, header := range [][]string{nil, {"Cookie", "token=expired.or.garbage"}, {"Authorization", "Bearer " + e.token("user2")}} {
		status, hdr, body := heraldtest.Do(t, http.MethodDelete, e.URL+"/session", "", nil, header...)
		sc := hdr.Get("Set-Cookie")
		if status != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("DELETE /session %v: %d %s", header, status, body)
		}
		for _, attr := range []string{"token=;", "Max-Age=0", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
			if !strings.Contains(sc, attr) {
				t.Fatalf("Set-Cookie %q lacks %s", sc, attr)
			}
		}
	}
}

// TestSessionHS256AndDev: an HS256 bearer gets a session too; with --dev
// the cookie is not Secure (plain http on localhost).
func TestSessionHS256AndDev(t *testing.T) {
	e := newAzureEnv(t, func(o *azureOptions) { o.insecure = true })
	status, hdr, body, c := sessionCookie(t, e.env, "Authorization", "Bearer "+e.token("user4", "extra"))
	if status != http.StatusNoContent || c == nil {
		t.Fatalf("HS256 bearer: %d %s", status, body)
	}
	if strings.Contains(hdr.Get("Set-Cookie"), "Secure") {
		t.Fatalf("--dev cookie is Secure: %q", hdr.Get("Set-Cookie"))
	}
	if claims := claimsOf(t, c.Value); claims["user"] != "user4" || claims["rol"] != "extra" {
		t.Fatalf("claims %v", claims)
	}
}

// TestSessionWithoutSecret: with Azure alone, sessions are signed with a
// per-process key: they work here, not on another instance.
func TestSessionWithoutSecret(t *testing.T) {
	e := newAzureEnv(t, func(o *azureOptions) { o.noSecret = true })
	_, _, body, c := sessionCookie(t, e.env, "Authorization", "Bearer "+e.user("user5@corp.example"))
	if c == nil {
		t.Fatalf("no cookie: %s", body)
	}
	if status, _, out := e.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token="+c.Value); status != 200 {
		t.Fatalf("the session here: %d %s", status, out)
	}
	other := newAzureEnv(t, func(o *azureOptions) { o.noSecret = true })
	status, _, out := other.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token="+c.Value)
	if status != 401 || problem(t, out).Code != "invalid_token" {
		t.Fatalf("the session on another instance: %d %s", status, out)
	}
	// HS256 bearers stay off without JWT_SECRET.
	status, _, out = e.do(http.MethodGet, "/notifications", e.token("user5"), nil)
	if status != 401 || problem(t, out).Code != "invalid_token" {
		t.Fatalf("HS256 bearer without JWT_SECRET: %d %s", status, out)
	}
}

// TestSessionCORS: a SPA on FRONTEND_URL may call POST /session with
// credentials.
func TestSessionCORS(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodOptions, e.URL+"/session", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := heraldtest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != origin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}
