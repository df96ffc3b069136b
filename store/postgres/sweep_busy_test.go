package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestSweepBusyInMicroseconds: Busy is the time herald_sweep reports in
// microseconds (busy_us), as a Duration: a whole number of microseconds,
// at least one for a chunk that deleted rows, and no more than the call
// took. A Busy read in the wrong unit (busy_us nanoseconds, or divided
// instead of multiplied) is below a microsecond for any chunk shorter than
// a second.
func TestSweepBusyInMicroseconds(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	ctx := context.Background()
	for i := range 3 {
		if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "old " + string(rune('a'+i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	c, err := db.Sweep(ctx, time.Now().Add(time.Hour), 100)
	took := time.Since(start)
	if err != nil || c.Rows != 6 {
		t.Fatalf("Sweep = %+v, %v; want the 3 copies and 3 notifications deleted", c, err)
	}
	if c.Busy < time.Microsecond || c.Busy%time.Microsecond != 0 || c.Busy > took {
		t.Fatalf("Busy = %v (%d ns); want a whole number of microseconds, at least 1 µs and at most the %v the call took", c.Busy, int64(c.Busy), took)
	}
}
