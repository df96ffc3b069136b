package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestWALCheckpointedInBackground: with SQLite's automatic checkpoint off,
// the listener copies the WAL into the database in the background. Only a
// checkpoint writes pages into the main database file, so its growth shows
// that one ran.
func TestWALCheckpointedInBackground(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(dir, "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	h := storetest.NewHarness(t, db)
	storetest.Seed(t, h.Store, 20, 0)
	before := size("h.db")
	for i := 0; i < 300; i++ {
		if _, err := h.Store.Publish(context.Background(), store.Message{
			To: store.Targets{All: true}, Type: "t", Title: "into the wal",
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size("h.db") < before+64<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (WAL %d): no background checkpoint", size("h.db"), size("h.db-wal"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
