package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// TestInstanceLock: a second store opened with the instance lock on the
// same file is refused, with a message that says what to do, until the
// first closes; stores opened without it (the CLI) work beside it.
func TestInstanceLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	first, err := sqlite.Open(ctx, "sqlite:"+path, sqlite.InstanceLock())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	_, err = sqlite.Open(ctx, "sqlite:"+path, sqlite.InstanceLock())
	if !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second Open with the instance lock: %v; want ErrLocked", err)
	}
	for _, want := range []string{path, "DATABASE_URL=sqlite:" + path, "SQLite serves one instance", "PostgreSQL", path + ".lock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, err)
		}
	}

	cli, err := sqlite.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatalf("Open without the lock beside a locked store: %v", err)
	}
	if _, _, err := cli.PutEmployee(ctx, store.Employee{ID: 1, Username: "ana"}); err != nil {
		t.Fatalf("a write without the lock: %v", err)
	}
	cli.Close()
	if e, err := first.Employee(ctx, 1); err != nil || e.Username != "ana" {
		t.Fatalf("the locked store reads %+v, %v; want the CLI's write", e, err)
	}

	first.Close()
	again, err := sqlite.Open(ctx, "sqlite:"+path, sqlite.InstanceLock())
	if err != nil {
		t.Fatalf("Open with the lock after the holder closed: %v", err)
	}
	again.Close()
}

// TestPingNoticesTheFileGone: when the database file is removed or
// replaced underneath a running store, the open connections keep working
// on the old file while new ones (and the next start) see another: Ping
// must fail, naming the path. Removing and renaming work as root too.
func TestPingNoticesTheFileGone(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string)
	}{
		{"removed with its WAL", func(t *testing.T, path string) {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(path + suffix); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"replaced by another database", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "other.db")
			db, err := sql.Open("sqlite", "file:"+other)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE x (y INTEGER)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"its directory removed", func(t *testing.T, path string) {
			if err := os.RemoveAll(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data", "h.db")
			if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			db, err := sqlite.Open(context.Background(), "sqlite:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			storetest.NewHarness(t, db)
			storetest.Seed(t, db, 1, 0)
			tt.mutate(t, path)
			err = db.Ping(context.Background())
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Ping = %v; want ErrUnavailable naming %s", err, path)
			}
		})
	}
}

// TestPingNeedsAWrite: while another process holds SQLite's write lock,
// reads work but nothing can be written; Ping, which writes, fails within
// its context, and succeeds again once the lock is released.
func TestPingNeedsAWrite(t *testing.T) {
	db := MustOpen(t)
	storetest.NewHarness(t, db)
	other, err := sql.Open("sqlite", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := db.Ping(ctx); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "write") {
		t.Fatalf("Ping while another process holds the write lock = %v; want ErrUnavailable from the write", err)
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.Ping(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the lock was released: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
