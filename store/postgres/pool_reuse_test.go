package postgres

import (
	"context"
	"testing"

	"github.com/corp/herald/store/postgres/pgtest"
)

// TestPoolReusesConnections: a healthy connection goes back to the pool and
// serves the next call (bound.go's IsValid and ResetSession, and
// closedByPeer, take only dead or cut-off connections for bad), so
// sequential calls do not each pay a TCP and PostgreSQL handshake.
func TestPoolReusesConnections(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", func(ctx context.Context, url string) error {
		db, err := Open(ctx, url)
		if err != nil {
			return err
		}
		return db.Close()
	})
	ctx := context.Background()
	db, err := Open(ctx, u, WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pid := func() int {
		t.Helper()
		var p int
		if err := db.x.GetContext(ctx, &p, `SELECT pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := pid()
	for i := range 5 {
		if p := pid(); p != first {
			t.Fatalf("call %d ran on backend %d, the first on %d: the pooled connection was not reused", i+2, p, first)
		}
	}
	// A transaction and a query's rows give the connection back too.
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p int
	if err := tx.GetContext(ctx, &p, `SELECT pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if p != first || pid() != first {
		t.Fatalf("a transaction ran on backend %d, or the call after it on another, want %d throughout", p, first)
	}
	if stats := db.x.Stats(); stats.OpenConnections != 1 {
		t.Fatalf("%d connections open after sequential calls, want 1", stats.OpenConnections)
	}
}
