package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// rawDB is a plain connection to the test database, to look at and age rows.
func rawDB(t *testing.T, u string) *sqlx.DB {
	t.Helper()
	x, err := sqlx.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func count(t *testing.T, x *sqlx.DB, table string) int {
	t.Helper()
	var n int
	if err := x.Get(&n, `SELECT count(*) FROM `+table); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIdempotencyExpiry: a key lives 24 h and no longer (see
// storetest.IdempotencyExpiry); an expired key is taken over by the next
// publish that uses it.
func TestIdempotencyExpiry(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	x := rawDB(t, u)
	age := func(d time.Duration) {
		if _, err := x.Exec(`UPDATE idempotency_keys SET created_at = created_at - $1::interval`, d.String()); err != nil {
			t.Fatal(err)
		}
	}
	storetest.IdempotencyExpiry(t, db, age, func() int { return count(t, x, "idempotency_keys") })
}

// TestHousekeeping: one round deletes idempotency keys older than 24 h and
// stored ephemeral messages older than their keep, and nothing younger.
func TestHousekeeping(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 2, 0)
	x := rawDB(t, u)
	ctx := context.Background()
	for _, k := range []string{"old", "young"} {
		idem := &store.Idempotency{Owner: "service:test", Key: k, Hash: k}
		if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: k}, idem); err != nil {
			t.Fatal(err)
		}
	}
	// Two ephemeral messages too large for a payload: stored for the listeners.
	big := strings.Repeat("x", 9000)
	for range 2 {
		if _, err := db.PublishEphemeral(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "e", Body: big}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, x, "ephemeral_messages"); n != 2 {
		t.Fatalf("%d stored ephemeral messages, want 2", n)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := x.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`UPDATE idempotency_keys SET created_at = created_at - $1::interval WHERE key = 'old'`, (store.IdempotencyTTL + time.Second).String())
	mustExec(`UPDATE idempotency_keys SET created_at = created_at - $1::interval WHERE key = 'young'`, (store.IdempotencyTTL - time.Minute).String())
	mustExec(`UPDATE ephemeral_messages SET created_at = created_at - $1::interval WHERE id = (SELECT min(id) FROM ephemeral_messages)`, (postgres.EphemeralKeep + time.Second).String())
	if err := db.CleanUp(ctx); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := x.Select(&keys, `SELECT key FROM idempotency_keys ORDER BY key`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "young" {
		t.Fatalf("keys after housekeeping %v, want [young]", keys)
	}
	if n := count(t, x, "ephemeral_messages"); n != 1 {
		t.Fatalf("%d ephemeral messages after housekeeping, want 1 (the young one)", n)
	}
	if err := db.CleanUp(ctx); err != nil { // again: nothing more to do
		t.Fatal(err)
	}
	if n := count(t, x, "idempotency_keys"); n != 1 {
		t.Fatalf("a second round deleted the young key")
	}
}
