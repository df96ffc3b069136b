package handlers_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/internal/heraldtest"
)

func sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestBadTokens: each kind of bad token, on a REST route and on the stream,
// gets its status, problem code and WWW-Authenticate.
func TestBadTokens(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	secret := []byte(testSecret)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	valid := sign(t, jwa.HS256, secret, map[string]any{"user": "user2", "exp": now.Add(time.Hour).Unix()})
	parts := strings.Split(valid, ".")
	tests := []struct {
		name   string
		header string // the Authorization header; empty means none
		cookie string
		status int
		code   string
	}{
		{"no token", "", "", 401, "missing_token"},
		{"empty bearer", "Bearer ", "", 401, "missing_token"},
		{"basic scheme", "Basic dXNlcjpwYXNz", "", 401, "invalid_token"},
		{"not a jwt", "Bearer hello", "", 401, "invalid_token"},
		{"truncated", "Bearer " + valid[:len(valid)-10], "", 401, "invalid_token"},
		{"bad base64", "Bearer " + parts[0] + ".%%%." + parts[2], "", 401, "invalid_token"},
		{"tampered payload", "Bearer " + parts[0] + "." + b64(`{"user":"user1","exp":`+itoa(now.Add(time.Hour).Unix())+`}`) + "." + parts[2], "", 401, "invalid_token"},
		{"wrong secret", "Bearer " + sign(t, jwa.HS256, []byte("another-secret-another-secret-!!"), map[string]any{"user": "user2", "exp": now.Add(time.Hour).Unix()}), "", 401, "invalid_token"},
		{"alg none", "Bearer " + b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"user":"user2","exp":`+itoa(now.Add(time.Hour).Unix())+`}`) + ".", "", 401, "invalid_token"},
		{"RS256 while only HS256 is configured", "Bearer " + sign(t, jwa.RS256, rsaKey, map[string]any{"user": "user2", "exp": now.Add(time.Hour).Unix()}), "", 401, "invalid_token"},
		{"HS384", "Bearer " + sign(t, jwa.HS384, secret, map[string]any{"user": "user2", "exp": now.Add(time.Hour).Unix()}), "", 401, "invalid_token"},
		{"expired", "Bearer " + sign(t, jwa.HS256, secret, map[string]any{"user": "user2", "exp": now.Add(-2 * time.Minute).Unix()}), "", 401, "token_expired"},
		{"not yet valid", "Bearer " + sign(t, jwa.HS256, secret, map[string]any{"user": "user2", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(5 * time.Minute).Unix()}), "", 401, "invalid_token"},
		{"no exp", "Bearer " + sign(t, jwa.HS256, secret, map[string]any{"user": "user2"}), "", 401, "invalid_token"},
		{"100 KiB token", "Bearer " + strings.Repeat("a", 100<<10), "", 401, "invalid_token"},
		{"unknown employee", "Bearer " + e.token("nobody"), "", 403, "unknown_employee"},
		{"bad cookie", "", "garbage", 401, "invalid_token"},
		{"expired cookie", "", sign(t, jwa.HS256, secret, map[string]any{"user": "user2", "exp": now.Add(-time.Hour).Unix()}), 401, "token_expired"},
		{"bad header wins over a good cookie", "Bearer nope", valid, 401, "invalid_token"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/notifications", "/events"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				var hdr []string
				if tt.header != "" {
					hdr = append(hdr, "Authorization", tt.header)
				}
				if tt.cookie != "" {
					hdr = append(hdr, "Cookie", "token="+tt.cookie)
				}
				s, resp, body := heraldtest.OpenStream(t, e.URL+path, "", hdr...)
				if s != nil {
					t.Fatalf("accepted (200)")
				}
				p := problem(t, body)
				if resp.StatusCode != tt.status || p.Code != tt.code || p.Status != tt.status {
					t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
				}
				wa := resp.Header.Get("WWW-Authenticate")
				if tt.status == 401 && !strings.HasPrefix(wa, `Bearer error="invalid_token"`) {
					t.Fatalf("WWW-Authenticate = %q", wa)
				}
				if tt.status != 401 && wa != "" {
					t.Fatalf("WWW-Authenticate on a %d: %q", tt.status, wa)
				}
			})
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCookieAuth(t *testing.T) {
	e := newEnv(t)
	tok := e.token("user2")
	for _, cookie := range []string{
		"token=" + tok,
		"theme=dark; token=" + tok + "; other=1",
		"a=b;token=" + tok + ";c=d",
		"  theme=dark ;  token=" + tok,
	} {
		s, resp, body := heraldtest.OpenStream(t, e.URL+"/events", "", "Cookie", cookie)
		if s == nil {
			t.Fatalf("Cookie %q: %d %s", cookie, resp.StatusCode, body)
		}
		s.Close()
	}
	// The header wins over the cookie when both hold valid tokens.
	s := heraldtest.MustOpenStream(t, e.URL+"/events", e.token("user3"), "Cookie", "token="+tok)
	e.mustPublish("for 3", 3)
	e.mustPublish("for 2", 2)
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != "for 3" {
		t.Fatalf("header+cookie stream belongs to the cookie's user: got %q", heraldtest.Title(t, m))
	}
}

func TestOldSystemRoleClaims(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	for _, claims := range []map[string]any{
		{"user": "user3", "name": "Three", "rol": "admin", "exp": now.Add(time.Hour).Unix()},
		{"user": "user3", "roles": []string{"x", "service"}, "exp": now.Add(time.Hour).Unix()},
		{"user": "svc", "rol": "service", "exp": now.Add(time.Hour).Unix()},
	} {
		status, _, out := e.do(http.MethodPost, "/notifications", sign(t, jwa.HS256, []byte(testSecret), claims), body)
		if status != 201 {
			t.Fatalf("claims %v: %d %s", claims, status, out)
		}
	}
}
