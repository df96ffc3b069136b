package handlers_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/corp/herald/handlers"
)

// The limiters' clock is frozen: no bucket refills between two requests,
// however slow the machine.
func withLimits(l handlers.Limits) func(*envOptions) {
	frozen := time.Now()
	l.Clock = func() time.Time { return frozen }
	return func(o *envOptions) {
		o.handlerConfig = func(c *handlers.Config) { c.Limits = l }
	}
}

// rateLimited checks a 429 rate_limited answer with Retry-After in whole
// seconds (at least 1).
func rateLimited(t *testing.T, what string, status int, h http.Header, out []byte) {
	t.Helper()
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || problem(t, out).Code != "rate_limited" || err != nil || secs < 1 {
		t.Fatalf("%s: %d Retry-After %q %s, want 429 rate_limited with Retry-After in whole seconds", what, status, h.Get("Retry-After"), out)
	}
}

// TestPublishRate: PUBLISH_RATE per publisher identity, with a burst of
// twice the rate; other publishers are not held up by one that is limited.
// (Issue 14, row 5: one token made 17,910 publishes in 10 s.)
func TestPublishRate(t *testing.T) {
	e := newEnv(t, withLimits(handlers.Limits{Publish: 1}))
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	for i := range 2 { // the burst: twice the rate
		if status, _, out := e.do(http.MethodPost, "/notifications", e.service(), body); status != http.StatusCreated {
			t.Fatalf("publish %d within the burst: %d %s", i, status, out)
		}
	}
	status, h, out := e.do(http.MethodPost, "/notifications", e.service(), body)
	rateLimited(t, "third publish at once", status, h, out)
	// The same service under another spelling is the same publisher.
	status, h, out = e.do(http.MethodPost, "/notifications", e.token("BILLING-SERVICE", "service"), body)
	rateLimited(t, "the same service, spelled otherwise", status, h, out)
	if status, _, out := e.do(http.MethodPost, "/notifications", e.admin(), body); status != http.StatusCreated {
		t.Fatalf("another publisher: %d %s", status, out)
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 3 {
		t.Fatalf("employee 2 has %d notifications, want 3 (refused publishes store nothing)", head)
	}
}

// TestStateRate: STATE_RATE per employee on state changes.
func TestStateRate(t *testing.T) {
	e := newEnv(t, withLimits(handlers.Limits{State: 2}))
	for i := range 4 {
		if status, _, out := e.do(http.MethodPost, "/notifications/read", e.token("user2"), map[string]any{"all": true}); status != http.StatusOK {
			t.Fatalf("mark read %d within the burst: %d %s", i, status, out)
		}
	}
	status, h, out := e.do(http.MethodPost, "/notifications/read", e.token("user2"), map[string]any{"all": true})
	rateLimited(t, "fifth state change at once", status, h, out)
	if status, _, out := e.do(http.MethodPost, "/notifications/read", e.token("user3"), map[string]any{"all": true}); status != http.StatusOK {
		t.Fatalf("another employee: %d %s", status, out)
	}
	// Reading is not limited.
	if status, _, out := e.do(http.MethodGet, "/notifications", e.token("user2"), nil); status != http.StatusOK {
		t.Fatalf("inbox read: %d %s", status, out)
	}
}

// TestConnectRate: CONNECT_RATE per client IP over every stream transport,
// before authentication; the client IP comes from X-Forwarded-For only
// through a trusted proxy.
func TestConnectRate(t *testing.T) {
	open := func(e *env, path string, header ...string) (int, http.Header, []byte) {
		t.Helper()
		// No token: the limit comes first, so a refused open is 429, an
		// allowed one 401.
		return e.do(http.MethodGet, path, "", nil, header...)
	}
	t.Run("socket address", func(t *testing.T) {
		e := newEnv(t, withLimits(handlers.Limits{Connect: 1}))
		for _, path := range []string{"/events", "/ws"} {
			if status, _, out := open(e, path); status != http.StatusUnauthorized {
				t.Fatalf("open %s within the burst: %d %s", path, status, out)
			}
		}
		status, h, out := open(e, "/events")
		rateLimited(t, "third stream open from one address, over SSE and WebSocket", status, h, out)
		// Without a trusted proxy, X-Forwarded-For is the client's word.
		status, h, out = open(e, "/ws", "X-Forwarded-For", "198.51.100.9")
		rateLimited(t, "a forged X-Forwarded-For from an untrusted peer", status, h, out)
	})
	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnv(t, withLimits(handlers.Limits{Connect: 1,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}}))
		for range 2 {
			if status, _, out := open(e, "/events", "X-Forwarded-For", "203.0.113.7"); status != http.StatusUnauthorized {
				t.Fatalf("client 203.0.113.7 within the burst: %d %s", status, out)
			}
		}
		status, h, out := open(e, "/events", "X-Forwarded-For", "203.0.113.7")
		rateLimited(t, "client 203.0.113.7 over the limit", status, h, out)
		// What the client wrote left of the proxies' entries is ignored;
		// trusted hops (10.1.2.3, a second proxy) are skipped.
		status, h, out = open(e, "/events", "X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3")
		rateLimited(t, "the same client behind two proxies, with a forged entry", status, h, out)
		if status, _, out := open(e, "/events", "X-Forwarded-For", "203.0.113.8"); status != http.StatusUnauthorized {
			t.Fatalf("another client behind the proxy: %d %s", status, out)
		}
		// IPv6 clients count per /64.
		for range 2 {
			open(e, "/events", "X-Forwarded-For", "2001:db8:1:2::1")
		}
		status, h, out = open(e, "/events", "X-Forwarded-For", "2001:db8:1:2:ffff::9")
		rateLimited(t, "another address of the same IPv6 /64", status, h, out)
	})
}

// TestRatesOffByDefault: a zero Limits limits nothing.
func TestRatesOffByDefault(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	for i := range 30 {
		if status, _, out := e.do(http.MethodPost, "/notifications", e.service(), body); status != http.StatusCreated {
			t.Fatalf("publish %d: %d %s", i, status, out)
		}
	}
}
