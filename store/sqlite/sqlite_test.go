package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// MustOpen opens a fresh SQLite store in a temp dir and closes it at cleanup.
func MustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(tb.TempDir(), "herald.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return MustOpen(t) })
}

func TestOpenRejectsMemory(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), "sqlite::memory:"); err == nil {
		t.Fatal("Open(:memory:) succeeded; want an error (one database per connection)")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "h.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Seed(t, db, 2, 1)
	db.Close()
	db, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer db.Close()
	if e, err := db.EmployeeByLogin(context.Background(), "user1"); err != nil || e.ID != 1 {
		t.Fatalf("after reopen: %+v, %v", e, err)
	}
}
