package main_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/tcpproxy"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestPostgresUnreachableAtStart: `herald serve` with PostgreSQL out of
// reach serves anyway (issue 14, row 13: it exited): /healthz 200,
// /readyz and the API 503 unavailable; once the database is reachable it
// migrates, becomes ready and works, without a restart.
func TestPostgresUnreachableAtStart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	proxy.Cut()
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "DATABASE_URL="+u.String())
	if status, _, out := heraldtest.Do(t, http.MethodGet, p.URL+"/healthz", "", nil); status != 200 {
		t.Fatalf("healthz: %d %s", status, out)
	}
	status, _, out := heraldtest.Do(t, http.MethodGet, p.URL+"/readyz", "", nil)
	if status != 503 || !strings.Contains(string(out), `"unavailable"`) || strings.Contains(string(out), "127.0.0.1") {
		t.Fatalf("readyz while unreachable: %d %s, want 503 unavailable without internal detail", status, out)
	}
	svc := mint(t, "hr-sync", "service", "Directory.Write")
	put := func() (int, []byte) {
		status, _, out := heraldtest.Do(t, http.MethodPut, p.URL+"/employees/2", svc, map[string]any{"username": "user2"})
		return status, out
	}
	if status, out := put(); status != 503 {
		t.Fatalf("PUT employee while unreachable: %d %s, want 503", status, out)
	}
	proxy.Restore()
	waitReady(t, p, 200)
	if status, out := put(); status != 201 {
		t.Fatalf("PUT employee once reachable: %d %s", status, out)
	}
	if status, out := publishTo(t, p, svc, "hello", nil); status != 201 {
		t.Fatalf("publish once reachable: %d %s", status, out)
	}
}
