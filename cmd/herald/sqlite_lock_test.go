package main_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondServerOnOneSQLiteFile: a second herald serve on the file of a
// running one refuses to start and says why and what to do; the CLI
// commands still work on that file beside the server.
func TestSecondServerOnOneSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.db")
	dsn := "DATABASE_URL=sqlite:" + path
	startHerald(t, []string{"serve"}, dsn, "JWT_SECRET="+e2eSecret)

	out, err := runCLI(t, []string{dsn, "JWT_SECRET=" + e2eSecret, "HTTP_ADDR=127.0.0.1:0"}, "serve")
	if err == nil {
		t.Fatalf("a second server started on %s:\n%s", path, out)
	}
	for _, want := range []string{"SQLite serves one instance", path, "DATABASE_URL", "PostgreSQL"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if out, err := runCLI(t, []string{dsn}, "employees", "put", "--id", "4", "--username", "dee"); err != nil {
		t.Fatalf("herald employees beside a running server: %v\n%s", err, out)
	}
	if out, err := runCLI(t, []string{dsn}, "migrate"); err != nil {
		t.Fatalf("herald migrate beside a running server: %v\n%s", err, out)
	}
}
