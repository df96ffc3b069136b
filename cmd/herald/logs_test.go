package main_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/oidctest"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestReadyzPollingLogsChangesOnly: /readyz polled while the Azure keys
// cannot load writes no ERROR per poll, one WARN when readiness is lost and
// one INFO when it returns.
func TestReadyzPollingLogsChangesOnly(t *testing.T) {
	iss := oidctest.New(t)
	iss.SetDown(true)
	p := startHerald(t, []string{"serve"}, append(azureEnv(iss), "JWT_SECRET="+e2eSecret)...)
	for range 20 {
		if status, _, _ := heraldtest.Do(t, http.MethodGet, p.URL+"/readyz", "", nil); status != 503 {
			t.Fatalf("/readyz with the keys missing: %d", status)
		}
	}
	iss.SetDown(false)
	waitReady(t, p, 200)
	for range 5 {
		heraldtest.Do(t, http.MethodGet, p.URL+"/readyz", "", nil)
	}
	logs := p.Logs()
	if n := strings.Count(logs, "level=ERROR"); n > 0 {
		t.Errorf("%d ERROR lines:\n%s", n, logs)
	}
	if n := strings.Count(logs, `msg="not ready`); n != 1 {
		t.Errorf("%d 'not ready' lines, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs, `level=INFO msg="ready again`); n != 1 {
		t.Errorf("%d 'ready again' INFO lines, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, "path=/readyz") {
		t.Errorf("a /readyz poll was logged above debug:\n%s", logs)
	}
}

// TestFreshPostgresStartIsQuiet: the first LISTEN of a start, with no
// stream open, does not claim that deliveries may have been missed.
func TestFreshPostgresStartIsQuiet(t *testing.T) {
	db := pgtest.NewDatabase(t)
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "DATABASE_URL="+db)
	waitReady(t, p, 200)
	if logs := p.Logs(); strings.Contains(logs, "missed") || strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Fatalf("a fresh PostgreSQL start logged a warning:\n%s", logs)
	}
}
