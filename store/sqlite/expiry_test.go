package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// TestIdempotencyExpiry: a key lives 24 h: within it a retry gets the first
// answer and another body is refused; after it the key publishes anew, and
// the expired row is deleted when the next key is saved.
func TestIdempotencyExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := sqlite.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.Seed(t, db, 1, 0)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	age := func(d time.Duration) {
		if _, err := raw.Exec(`UPDATE idempotency_keys SET created_at = created_at - ?`, d.Milliseconds()); err != nil {
			t.Fatal(err)
		}
	}
	keys := func() int {
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	storetest.IdempotencyExpiry(t, db, age, keys)
}
