package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestHousekeepingChunks: one round of housekeeping deletes every expired
// idempotency key and old ephemeral message, however many chunks that
// takes (two full chunks and one row here), and keeps the young ones.
func TestHousekeepingChunks(t *testing.T) {
	const old = 2*5000 + 1 // two full DELETE chunks and one row
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	x := rawDB(t, u)
	ctx := context.Background()
	for _, q := range []struct {
		sql string
		n   int
		age time.Duration
	}{
		{`INSERT INTO idempotency_keys (owner, key, request_hash, result, created_at)
			SELECT 'service:test', 'old' || g, 'h', '{}', now() - $2::interval FROM generate_series(1, $1::int) g`, old, store.IdempotencyTTL + time.Minute},
		{`INSERT INTO idempotency_keys (owner, key, request_hash, result, created_at)
			SELECT 'service:test', 'young' || g, 'h', '{}', now() - $2::interval FROM generate_series(1, $1::int) g`, 3, store.IdempotencyTTL - time.Hour},
		{`INSERT INTO ephemeral_messages (payload, created_at)
			SELECT 'old', now() - $2::interval FROM generate_series(1, $1::int) g`, old, postgres.EphemeralKeep + time.Minute},
		{`INSERT INTO ephemeral_messages (payload, created_at)
			SELECT 'young', now() - $2::interval FROM generate_series(1, $1::int) g`, 3, time.Duration(0)},
	} {
		if _, err := x.Exec(q.sql, q.n, q.age.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CleanUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table, kind string
		want        int
	}{
		{"idempotency_keys WHERE key LIKE 'old%'", "expired keys", 0},
		{"idempotency_keys WHERE key LIKE 'young%'", "young keys", 3},
		{"ephemeral_messages WHERE payload = 'old'", "old ephemeral messages", 0},
		{"ephemeral_messages WHERE payload = 'young'", "young ephemeral messages", 3},
	} {
		if n := count(t, x, c.table); n != c.want {
			t.Errorf("%d %s left after one round of housekeeping, want %d", n, c.kind, c.want)
		}
	}
}
