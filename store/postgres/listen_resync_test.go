package postgres_test

import (
	"testing"
	"time"

	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestListenerResyncsOnceAfterFailedRead: when the listener cannot read
// what a notification names (here the notifications table is gone), it
// owes its streams a resync and makes it once the database answers (a
// retry every second), once: the retry stops with the resync made.
func TestListenerResyncsOnceAfterFailedRead(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	h := storetest.NewHarness(t, db)
	// Listen resyncs once LISTEN is in place; wait for that one first.
	eventually(t, "the resync after LISTEN", func() bool { return h.Sink.Resyncs() >= 1 })
	before := h.Sink.Resyncs()
	x := rawDB(t, u)
	if _, err := x.Exec(`ALTER TABLE notifications RENAME TO notifications_away`); err != nil {
		t.Fatal(err)
	}
	// A notification for employee 1, whose contents cannot be read now.
	if _, err := x.Exec(`SELECT pg_notify('herald', 'n1 1:1')`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a resync after the failed read", func() bool { return h.Sink.Resyncs() > before })
	// The retry runs every second while a resync is owed: three more
	// seconds would have made three more resyncs had it not stopped.
	time.Sleep(3 * time.Second)
	if n := h.Sink.Resyncs() - before; n != 1 {
		t.Fatalf("%d resyncs after one failed read; want 1", n)
	}
	if d := h.Sink.Deliveries(); len(d) != 0 {
		t.Fatalf("delivered %v; the notification could not be read", d)
	}
}
