package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestSweepOneInstanceAtATime: while another session holds the sweep's
// advisory lock (another instance sweeping), a sweep deletes nothing and
// reports no error; once the lock is free it deletes, and reports the time
// the database spent on it.
func TestSweepOneInstanceAtATime(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	ctx := context.Background()
	if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "old"}, nil); err != nil {
		t.Fatal(err)
	}
	x := rawDB(t, u)
	other, err := x.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.Exec(`SELECT pg_advisory_xact_lock($1)`, postgres.SweepLock); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // everything is older than that
	c, err := db.Sweep(ctx, later, 100)
	if err != nil || c.Rows != 0 {
		t.Fatalf("sweep while another holds the lock = %+v, %v; want nothing deleted, no error", c, err)
	}
	if n := count(t, x, "inbox"); n != 1 {
		t.Fatalf("%d inbox rows after a locked-out sweep, want 1", n)
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	c, err = db.Sweep(ctx, later, 100)
	if err != nil || c.Rows != 2 || c.Busy <= 0 {
		t.Fatalf("sweep with the lock free = %+v, %v; want the copy and the notification deleted, busy > 0", c, err)
	}
	if n := count(t, x, "notifications"); n != 0 {
		t.Fatalf("%d notifications after the sweep, want 0", n)
	}
}
