package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// These tests hold the writer (writer_helpers_test.go) and queue requests
// behind it, so what it does next is fixed, not left to the scheduler.

// TestDeliveriesInCommitOrder: while one publish is committed but not yet
// fully delivered, no later publish may commit; once released, the sink gets
// both in commit order with gapless seqs. The writer is held either by its
// hook between commit and delivery, or by the sink itself, inside
// Deliver. A design that delivers before committing, outside the writer or
// on another goroutine, or that lets a second writer run, fails here every
// time: a delivery shows up early, or the second publish commits (the head
// moves) or is taken from the queue instead of waiting there. A writer
// that runs without the write lock fails at the first check, every time.
func TestDeliveriesInCommitOrder(t *testing.T) {
	for _, where := range []string{"after commit", "in the sink"} {
		t.Run(where, func(t *testing.T) {
			db := MustOpen(t)
			rec := storetest.NewRecorder()
			var held <-chan []string
			var open func()
			if where == "after commit" {
				g := holdAfterCommit(t, db, "A")
				held, open = g.held, g.open
				listen(t, db, rec)
			} else {
				s := &holdingSink{Recorder: rec, hold: "A", held: make(chan []string, 1), release: make(chan struct{})}
				t.Cleanup(s.open)
				held, open = s.held, s.open
				listen(t, db, s)
			}
			storetest.Seed(t, db, 1, 0)
			a := publishAsync(context.Background(), db, note("A", 1), nil)
			<-held
			// The write lock must be held from the commit to the end of the
			// deliveries: without it another write (a second batch, a
			// directory change) could commit and reach the sink in between.
			// Checked here, where the writer is stopped, the answer does not
			// depend on the scheduler, unlike a second writer's commit below.
			if !db.WriteLocked() {
				t.Fatal("the writer is between a commit and its deliveries, yet the write lock is free: another write could commit and be delivered out of commit order")
			}
			if head, _ := db.Head(context.Background(), 1); head != 1 {
				t.Fatalf("held after commit, yet the head is %d: want A committed (1)", head)
			}
			if d := rec.Deliveries(); where == "after commit" && len(d) != 0 {
				t.Fatalf("%d deliveries before the committed batch was released; want none", len(d))
			}
			b := publishAsync(context.Background(), db, note("B", 1), nil)
			waitQueued(t, db, 1, 1, 1)
			select {
			case o := <-a:
				t.Fatalf("A was answered (%+v) before its batch was delivered", o)
			default:
			}
			open()
			for _, c := range []<-chan outcome{a, b} {
				if o := <-c; o.err != nil {
					t.Fatal(o.err)
				}
			}
			rec.Wait(t, "two deliveries", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool { return len(d) == 2 })
			var got []string
			for _, d := range rec.Deliveries() {
				got = append(got, fmt.Sprintf("%s:%d", d.Notification.Title, d.Recipients[0].Seq))
			}
			if !slices.Equal(got, []string{"A:1", "B:2"}) {
				t.Fatalf("deliveries %v; want [A:1 B:2] (commit order)", got)
			}
		})
	}
}

// TestConcurrentPublishesShareOneCommit: publishes queued while the writer
// is busy go into its next transaction together, and the sink gets them in
// the order of their seqs.
func TestConcurrentPublishesShareOneCommit(t *testing.T) {
	db, h := openWithHarness(t, 2)
	g := holdAfterCommit(t, db, "first")
	first := publishAsync(context.Background(), db, note("first", 1, 2), nil)
	<-g.held
	const n = 20
	var outs []<-chan outcome
	for i := range n {
		outs = append(outs, publishAsync(context.Background(), db, note(fmt.Sprintf("n%d", i), 1, 2), nil))
	}
	waitQueued(t, db, n, 1, 1)
	g.open()
	for _, c := range append(outs, first) {
		if o := <-c; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if batch := g.batchOf("n0"); len(batch) != n {
		t.Fatalf("the %d queued publishes were committed in a batch of %d (%v); want one batch", n, len(batch), batch)
	}
	h.Sink.Wait(t, "all deliveries", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool { return len(d) == n+1 })
	last := map[int64]int64{}
	for _, d := range h.Sink.Deliveries() {
		for _, r := range d.Recipients {
			if r.Seq != last[r.Employee]+1 {
				t.Fatalf("employee %d: seq %d delivered after %d", r.Employee, r.Seq, last[r.Employee])
			}
			last[r.Employee] = r.Seq
		}
	}
}

// TestFailureInBatchIsIsolated: in one batch, a publish that fails — an
// Idempotency-Key reused with another body, a statement that fails after
// the publish has written rows — changes nothing and fails alone; a retry
// of a key earlier in the same batch gets the first answer; an ephemeral
// publish with a key commits its key and is delivered in order.
func TestFailureInBatchIsIsolated(t *testing.T) {
	db, h := openWithHarness(t, 2)
	poison(t, db)
	ctx := context.Background()
	if _, err := db.Publish(ctx, note("before", 1), &store.Idempotency{Owner: "o", Key: "k1", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	g := holdAfterCommit(t, db, "hold")
	hold := publishAsync(ctx, db, note("hold", 1), nil)
	<-g.held

	eph := note("eph", 2)
	eph.Event = "typing"
	queue := []struct {
		m    store.Message
		idem *store.Idempotency
		eph  bool
	}{
		{m: note("ok1", 1)},
		{m: note("mismatch", 1), idem: &store.Idempotency{Owner: "o", Key: "k1", Hash: "other"}},
		{m: note("poison", 1, 2)},
		{m: note("keyed", 2), idem: &store.Idempotency{Owner: "o", Key: "k2", Hash: "h"}},
		{m: note("keyed", 2), idem: &store.Idempotency{Owner: "o", Key: "k2", Hash: "h"}},
		{m: eph, idem: &store.Idempotency{Owner: "o", Key: "k3", Hash: "h"}, eph: true},
		{m: note("ok2", 1, 2)},
	}
	outs := make([]chan outcome, len(queue))
	for i, q := range queue {
		outs[i] = make(chan outcome, 1)
		go func() {
			var o outcome
			if q.eph {
				o.res, o.err = db.PublishEphemeral(ctx, q.m, q.idem)
			} else {
				o.res, o.err = db.Publish(ctx, q.m, q.idem)
			}
			outs[i] <- o
		}()
		waitQueued(t, db, i+1, 1, 2) // in this order
	}
	g.open()
	if o := <-hold; o.err != nil {
		t.Fatal(o.err)
	}
	got := make([]outcome, len(queue))
	for i := range outs {
		got[i] = <-outs[i]
	}
	if batch := g.batchOf("ok1"); !slices.Equal(batch, []string{"ok1", "mismatch", "poison", "keyed", "keyed", "eph", "ok2"}) {
		t.Fatalf("batch %v; want the seven queued requests in one batch, in queue order", batch)
	}
	for _, i := range []int{0, 3, 5, 6} {
		if got[i].err != nil || got[i].res.Replayed {
			t.Errorf("%s: %+v, %v; want a fresh success", queue[i].m.Title, got[i].res, got[i].err)
		}
	}
	if !errors.Is(got[1].err, store.ErrIdempotencyMismatch) {
		t.Errorf("mismatch: error %v, want ErrIdempotencyMismatch", got[1].err)
	}
	if got[2].err == nil || !strings.Contains(got[2].err.Error(), "poisoned") {
		t.Errorf("poison: error %v, want the trigger's failure", got[2].err)
	}
	if !got[4].res.Replayed || got[4].err != nil || got[4].res.NotificationID != got[3].res.NotificationID {
		t.Errorf("retry in the same batch = %+v, %v; want the first answer %+v, replayed", got[4].res, got[4].err, got[3].res)
	}
	// Employee 1: before 1, hold 2, ok1 3, ok2 4; employee 2: keyed 1, ok2 2.
	for emp, want := range map[int64][]string{1: {"before", "hold", "ok1", "ok2"}, 2: {"keyed", "ok2"}} {
		items, err := db.Since(ctx, emp, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var titles []string
		for i, it := range items {
			titles = append(titles, it.Notification.Title)
			if it.Seq != int64(i+1) {
				t.Errorf("employee %d: item %d has seq %d", emp, i, it.Seq)
			}
		}
		if !slices.Equal(titles, want) {
			t.Errorf("employee %d's inbox %v; want %v", emp, titles, want)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM notifications WHERE title = 'poison'`); n != 0 {
		t.Errorf("the failed publish left %d notification rows", n)
	}
	h.Sink.Wait(t, "deliveries", func(d []store.Delivery, e []store.Ephemeral, _ []storetest.Change) bool {
		return len(d) == 5 && len(e) == 1
	})
	var order []string
	for _, d := range h.Sink.Deliveries() {
		order = append(order, d.Notification.Title)
	}
	if !slices.Equal(order, []string{"before", "hold", "ok1", "keyed", "ok2"}) {
		t.Errorf("delivered %v", order)
	}
}

// TestLonePublishFailureWritesNothing: a batch of one has no savepoint; its
// failure rolls the whole transaction back.
func TestLonePublishFailureWritesNothing(t *testing.T) {
	db, _ := openWithHarness(t, 1)
	poison(t, db)
	if _, err := db.Publish(context.Background(), note("poison", 1), nil); err == nil {
		t.Fatal("the poisoned publish succeeded")
	}
	if head, _ := db.Head(context.Background(), 1); head != 0 {
		t.Fatalf("head %d after a failed publish; want 0", head)
	}
	if n := countRows(t, db, `SELECT count(*) FROM notifications`); n != 0 {
		t.Fatalf("%d notification rows after a failed publish; want 0", n)
	}
	if _, err := db.Publish(context.Background(), note("fine", 1), nil); err != nil {
		t.Fatalf("the next publish: %v", err)
	}
}

// TestCallerGivesUp: a caller whose context ends while its request waits
// in the queue gets an error and nothing is written; one whose context ends
// after its batch committed gets an error too, but the publish stays
// committed and is delivered.
func TestCallerGivesUp(t *testing.T) {
	db, h := openWithHarness(t, 1)
	g := holdAfterCommit(t, db, "taken")
	takenCtx, cancelTaken := context.WithCancel(context.Background())
	taken := publishAsync(takenCtx, db, note("taken", 1), nil)
	<-g.held
	cancelTaken()
	o := <-taken
	if !errors.Is(o.err, context.Canceled) || !strings.Contains(o.err.Error(), "commits with its batch") {
		t.Fatalf("gave up after commit: %v; want context.Canceled saying the write commits", o.err)
	}

	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	queued := publishAsync(queuedCtx, db, note("queued", 1), nil)
	waitQueued(t, db, 1, 1, 1)
	cancelQueued()
	o = <-queued
	if !errors.Is(o.err, context.Canceled) || !strings.Contains(o.err.Error(), "nothing written") {
		t.Fatalf("gave up in the queue: %v; want context.Canceled saying nothing was written", o.err)
	}
	g.open()
	if _, err := db.Publish(context.Background(), note("after", 1), nil); err != nil {
		t.Fatal(err)
	}
	items, _ := db.Since(context.Background(), 1, 0, 10)
	var titles []string
	for _, it := range items {
		titles = append(titles, fmt.Sprintf("%s:%d", it.Notification.Title, it.Seq))
	}
	if !slices.Equal(titles, []string{"taken:1", "after:2"}) {
		t.Fatalf("inbox %v; want [taken:1 after:2] (the abandoned queued publish never written)", titles)
	}
	h.Sink.Wait(t, "taken and after delivered", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool { return len(d) == 2 })
}

// TestQueueIsBounded: with the writer held and the queue full, a further
// publish blocks until its context ends, and writes nothing.
func TestQueueIsBounded(t *testing.T) {
	db, _ := openWithHarness(t, 1)
	g := holdAfterCommit(t, db, "hold")
	hold := publishAsync(context.Background(), db, note("hold", 1), nil)
	<-g.held
	outs := make([]<-chan outcome, sqlite.MaxWaiting)
	for i := range outs {
		outs[i] = publishAsync(context.Background(), db, note(fmt.Sprintf("q%d", i), 1), nil)
	}
	waitQueued(t, db, sqlite.MaxWaiting, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := db.Publish(ctx, note("overflow", 1), nil); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "room") {
		t.Fatalf("publish to a full queue: %v; want the context's deadline while waiting for room", err)
	}
	g.open()
	for _, c := range append(outs, hold) {
		if o := <-c; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if head, _ := db.Head(context.Background(), 1); head != sqlite.MaxWaiting+1 {
		t.Fatalf("head %d; want %d (the held one and the queued ones, not the overflow)", head, sqlite.MaxWaiting+1)
	}
}

// TestCloseRefusesWaitingPublishes: Close answers the publishes still
// queued and later ones with an error.
func TestCloseRefusesWaitingPublishes(t *testing.T) {
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Seed(t, db, 1, 0)
	g := holdAfterCommit(t, db, "hold")
	hold := publishAsync(context.Background(), db, note("hold", 1), nil)
	<-g.held
	queued := publishAsync(context.Background(), db, note("queued", 1), nil)
	waitQueued(t, db, 1, 1, 1)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Release the writer once Close has begun: a publish is then refused
	// before it is queued.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := db.Publish(ctx, note("probe", 1), nil)
		cancel()
		if err != nil && strings.Contains(err.Error(), "closed") {
			break
		}
	}
	g.open()
	if o := <-hold; o.err != nil {
		t.Fatalf("the batch in flight at Close: %v", o.err)
	}
	if o := <-queued; o.err == nil || !strings.Contains(o.err.Error(), "closed") {
		t.Fatalf("a publish queued at Close: %v; want a store-closed error", o.err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(context.Background(), note("late", 1), nil); err == nil {
		t.Fatal("publish after Close succeeded")
	}
}

// TestEphemeralWithoutKeySkipsTheWriter: an ephemeral publish without an
// Idempotency-Key stores nothing, so it neither queues for the writer nor
// waits for its commit: it is answered and delivered while the writer is
// held.
func TestEphemeralWithoutKeySkipsTheWriter(t *testing.T) {
	db, h := openWithHarness(t, 1)
	g := holdAfterCommit(t, db, "hold")
	hold := publishAsync(context.Background(), db, note("hold", 1), nil)
	<-g.held
	m := note("typing", 1)
	m.Event = "typing"
	res, err := db.PublishEphemeral(context.Background(), m, nil)
	if err != nil || res.Recipients != 1 {
		t.Fatalf("ephemeral publish while the writer is held = %+v, %v", res, err)
	}
	if n := len(h.Sink.Ephemerals()); n != 1 {
		t.Fatalf("%d ephemerals delivered while the writer is held; want 1", n)
	}
	g.open()
	if o := <-hold; o.err != nil {
		t.Fatal(o.err)
	}
}
