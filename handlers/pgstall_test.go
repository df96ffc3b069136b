package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/internal/tcpproxy"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestStalledPostgres: Herald on a PostgreSQL that accepts TCP but stops
// answering (issue 14, row 1: a publish answered 201 after 61 s, /readyz
// after 61 s). Publishes and /readyz answer 503 in bounded time; a publish
// whose statement was sent says it may have been stored and points to
// Idempotency-Key (row 6); one that was not, says nothing was written;
// /readyz shows no internal detail without a token (row 12).
func TestStalledPostgres(t *testing.T) {
	const bound = time.Second
	u := pgtest.NewDatabase(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, pu.Host)
	pu.Host = proxy.Addr()
	st, err := postgres.Open(context.Background(), pu.String(), postgres.WithCallTimeout(bound),
		postgres.WithListenerPing(100*time.Millisecond, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	storetest.Seed(t, st, 3, 1)
	hub := sse.NewHub(sse.WithGoroutines(*goroutineStreams), sse.WithSource(handlers.Source{Store: st}))
	a, err := auth.New(auth.Config{Secret: []byte(testSecret), PublisherRoles: []string{"admin"}, Directory: st})
	if err != nil {
		t.Fatal(err)
	}
	h := handlers.New(handlers.Config{Store: st, Hub: hub, Auth: a, OpenAPI: openapi.YAML})
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = st.Listen(ctx, handlers.NewFanout(hub, a, nil))
	}()
	srv := httptest.NewServer(validating(t.Errorf, h))
	t.Cleanup(func() {
		proxy.Restore()
		hub.Close()
		srv.Close()
		cancel()
		<-listening
	})
	waitReady(t, st)
	e := &env{t: t, URL: srv.URL, Secret: []byte(testSecret)}
	admin := e.token("user1") // an admin: may publish; its lookup is now cached
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	if status, _, out := e.do(http.MethodPost, "/notifications", admin, body); status != http.StatusCreated {
		t.Fatalf("publish before the stall: %d %s", status, out)
	}

	proxy.Stall()
	for _, tt := range []struct {
		name, method, path string
		header             []string
		limit              time.Duration
		detail             string // in the problem's detail
	}{
		{"publish", http.MethodPost, "/notifications", nil, bound, "may or may not have been saved. A retry may store it twice: publish with an Idempotency-Key"},
		{"publish with Idempotency-Key", http.MethodPost, "/notifications", []string{"Idempotency-Key", "k1"}, bound, "nothing was changed"},
		{"readyz", http.MethodGet, "/readyz", nil, 2 * time.Second, "the store is not ready"},
	} {
		var b any
		if tt.method == http.MethodPost {
			b = body
		}
		start := time.Now()
		status, hdr, out := e.do(tt.method, tt.path, admin, b, tt.header...)
		if tt.path == "/readyz" {
			status, hdr, out = e.do(tt.method, tt.path, "", nil)
		}
		took := time.Since(start)
		p := problem(t, out)
		if status != http.StatusServiceUnavailable || p.Code != "unavailable" || hdr.Get("Retry-After") == "" || !strings.Contains(p.Detail, tt.detail) {
			t.Errorf("%s on a stalled store: %d %s, want 503 unavailable with Retry-After, saying %q", tt.name, status, out, tt.detail)
		}
		if took > tt.limit+1500*time.Millisecond {
			t.Errorf("%s on a stalled store took %v, want about %v", tt.name, took.Round(time.Millisecond), tt.limit)
		}
	}
	// The same publish retried with the key once the store is back: stored
	// once (or replayed), never twice.
	proxy.Restore()
	waitReady(t, st)
	if status, _, out := e.do(http.MethodPost, "/notifications", admin, body, "Idempotency-Key", "k1"); status != http.StatusCreated {
		t.Fatalf("retry after the stall: %d %s", status, out)
	}
}
