package handlers_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/corp/herald/handlers"
	"github.com/corp/herald/handlers/webpush"
)

// pushEnv is an env with Web Push on, subscriptions allowed on
// push.example.com and the subdomains of push.example.net.
func pushEnv(t *testing.T) (*env, *webpush.Key) {
	t.Helper()
	key, err := webpush.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *envOptions) {
		o.handlerConfig = func(c *handlers.Config) {
			c.Push = &handlers.PushConfig{Key: key, Hosts: webpush.Hosts{"push.example.com", "*.push.example.net"}}
		}
	})
	return e, key
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// browserKeys are a browser's subscription keys, base64url.
func browserKeys(t testing.TB) (p256dh, auth string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	return b64u(k.PublicKey().Bytes()), b64u(secret)
}

func subscription(endpoint, p256dh, auth string) map[string]any {
	return map[string]any{"endpoint": endpoint, "expirationTime": nil, "keys": map[string]any{"p256dh": p256dh, "auth": auth}}
}

func TestPushOff(t *testing.T) {
	e := newEnv(t)
	p, a := browserKeys(t)
	for _, tt := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/push/key", nil},
		{http.MethodPost, "/push/subscriptions", subscription("https://push.example.com/x", p, a)},
		{http.MethodDelete, "/push/subscriptions", map[string]any{"endpoint": "https://push.example.com/x"}},
	} {
		status, _, body := e.do(tt.method, tt.path, e.token("user2"), tt.body)
		if pr := problem(t, body); status != http.StatusNotFound || pr.Code != "not_found" {
			t.Errorf("%s %s with push off: %d %s; want 404 not_found", tt.method, tt.path, status, body)
		}
	}
}

func TestPushKey(t *testing.T) {
	e, key := pushEnv(t)
	status, _, body := e.do(http.MethodGet, "/push/key", "", nil)
	var got struct {
		PublicKey string `json:"public_key"`
	}
	decodeInto(t, body, &got)
	raw, _ := base64.RawURLEncoding.DecodeString(got.PublicKey)
	if status != http.StatusOK || got.PublicKey != key.Public() || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("GET /push/key: %d %s; want 200 with %s (65 bytes)", status, body, key.Public())
	}
}

func TestPushSubscribe(t *testing.T) {
	e, _ := pushEnv(t)
	p, a := browserKeys(t)
	endpoints := func(emp int64) []string {
		subs, err := e.Store.PushSubscriptions(context.Background(), emp)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range subs {
			out = append(out, s.Endpoint)
		}
		return out
	}
	sub := subscription("https://push.example.com/wpush/1", p, a)
	for range 2 { // the same endpoint again counts once
		status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.token("user2"), sub)
		if status != http.StatusCreated || !strings.Contains(string(body), `"endpoint":"https://push.example.com/wpush/1"`) {
			t.Fatalf("POST /push/subscriptions: %d %s; want 201", status, body)
		}
	}
	if got := endpoints(2); !slices.Equal(got, []string{"https://push.example.com/wpush/1"}) {
		t.Fatalf("employee 2's subscriptions: %v", got)
	}
	// A subdomain of a *. pattern is fine; a port too.
	if status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.token("user2"), subscription("https://eu.push.example.net:8443/s", p, a)); status != http.StatusCreated {
		t.Fatalf("subdomain endpoint: %d %s", status, body)
	}
	// Another employee's DELETE leaves it; the owner's removes it; an
	// unknown endpoint is 204 too.
	for _, tt := range []struct {
		user, endpoint string
		left           int
	}{
		{"user3", "https://push.example.com/wpush/1", 2},
		{"user2", "https://push.example.com/wpush/1", 1},
		{"user2", "https://push.example.com/never", 1},
	} {
		status, _, body := e.do(http.MethodDelete, "/push/subscriptions", e.token(tt.user), map[string]any{"endpoint": tt.endpoint})
		if status != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("DELETE by %s: %d %s; want 204", tt.user, status, body)
		}
		if n := len(endpoints(2)); n != tt.left {
			t.Fatalf("after DELETE by %s of %s: employee 2 has %d; want %d", tt.user, tt.endpoint, n, tt.left)
		}
	}
	// A service has no subscriptions.
	if status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.service(), sub); status != http.StatusForbidden {
		t.Fatalf("service: %d %s; want 403", status, body)
	}
	if status, _, _ := e.do(http.MethodPost, "/push/subscriptions", "", sub); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d; want 401", status)
	}
}

func TestPushSubscribeLimit(t *testing.T) {
	e, _ := pushEnv(t)
	p, a := browserKeys(t)
	for i := range 12 {
		endpoint := "https://push.example.com/s/" + string(rune('a'+i))
		if status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.token("user2"), subscription(endpoint, p, a)); status != http.StatusCreated {
			t.Fatalf("subscription %d: %d %s", i, status, body)
		}
	}
	subs, _ := e.Store.PushSubscriptions(context.Background(), 2)
	if len(subs) != webpush.MaxSubscriptions || subs[0].Endpoint != "https://push.example.com/s/c" {
		t.Fatalf("after 12 subscriptions: %d, oldest %s; want 10, the two oldest gone", len(subs), subs[0].Endpoint)
	}
}

func TestPushSubscribeInvalid(t *testing.T) {
	e, _ := pushEnv(t)
	p, a := browserKeys(t)
	short := b64u(make([]byte, 33))
	offCurve := b64u(append([]byte{4}, make([]byte, 64)...))
	tests := []struct {
		name  string
		body  any
		field string
	}{
		{"http endpoint", subscription("http://push.example.com/x", p, a), "endpoint"},
		{"host not listed", subscription("https://evil.example.org/x", p, a), "endpoint"},
		{"internal address", subscription("https://10.0.0.5/x", p, a), "endpoint"},
		{"localhost", subscription("https://localhost:8080/x", p, a), "endpoint"},
		{"apex of a *. pattern", subscription("https://push.example.net/x", p, a), "endpoint"},
		{"lookalike suffix", subscription("https://push.example.com.evil.org/x", p, a), "endpoint"},
		{"user info", subscription("https://user:pw@push.example.com/x", p, a), "endpoint"},
		{"not a URL", subscription("push.example.com/x", p, a), "endpoint"},
		{"too long", subscription("https://push.example.com/"+strings.Repeat("a", 2048), p, a), "endpoint"},
		{"no endpoint", map[string]any{"keys": map[string]any{"p256dh": p, "auth": a}}, "endpoint"},
		{"no keys", map[string]any{"endpoint": "https://push.example.com/x"}, "keys"},
		{"short p256dh", subscription("https://push.example.com/x", short, a), "keys.p256dh"},
		{"p256dh off the curve", subscription("https://push.example.com/x", offCurve, a), "keys.p256dh"},
		{"p256dh not base64url", subscription("https://push.example.com/x", "***", a), "keys.p256dh"},
		{"auth of 8 bytes", subscription("https://push.example.com/x", p, b64u(make([]byte, 8))), "keys.auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.token("user2"), tt.body)
			pr := problem(t, body)
			if status != http.StatusUnprocessableEntity || pr.Code != "invalid_request" || !slices.Contains(pr.Fields(), tt.field) {
				t.Fatalf("%d %s; want 422 invalid_request naming %s", status, body, tt.field)
			}
		})
	}
	if subs, _ := e.Store.PushSubscriptions(context.Background(), 2); len(subs) != 0 {
		t.Fatalf("refused subscriptions were saved: %v", subs)
	}
	status, _, body := e.do(http.MethodPost, "/push/subscriptions", e.token("user2"), map[string]any{"endpoint": "https://push.example.com/x", "extra": 1})
	if status != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s; want 400", status, body)
	}
}
