package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// TestRecentNotesBounded: past recentMax the oldest entries go, and an
// entry is taken once.
func TestRecentNotesBounded(t *testing.T) {
	r := newRecentNotes()
	for id := int64(1); id <= recentMax+10; id++ {
		r.put(store.Notification{ID: id, Title: "n"})
	}
	if len(r.byID) != recentMax {
		t.Fatalf("%d entries kept, want %d", len(r.byID), recentMax)
	}
	out := map[int64]store.Notification{}
	missing := r.take(context.Background(), []int64{1, 10, 11, recentMax + 10}, out)
	if len(missing) != 2 || missing[0] != 1 || missing[1] != 10 {
		t.Fatalf("missing %v, want the 10 oldest evicted: [1 10]", missing)
	}
	if len(out) != 2 || out[11].ID != 11 || out[recentMax+10].ID != recentMax+10 {
		t.Fatalf("took %v", out)
	}
	if missing := r.take(context.Background(), []int64{11}, out); len(missing) != 1 {
		t.Fatalf("an entry was taken twice")
	}
	if r.hits != 2 || r.misses != 3 {
		t.Fatalf("hits %d, misses %d; want 2, 3", r.hits, r.misses)
	}
}

// TestRecentNotesWaitForBatchInFlight: a notification missing while a
// batch begun before the look is in flight is waited for; one missing with
// no batch in flight is not.
func TestRecentNotesWaitForBatchInFlight(t *testing.T) {
	r := newRecentNotes()
	ticket := r.begin()
	got := make(chan []int64, 1)
	out := map[int64]store.Notification{}
	go func() { got <- r.take(context.Background(), []int64{7}, out) }()
	// The taker waits on the batch: nothing comes back until it ends.
	select {
	case m := <-got:
		t.Fatalf("take returned %v while the batch was in flight", m)
	case <-time.After(50 * time.Millisecond):
	}
	r.put(store.Notification{ID: 7, Title: "late answer"})
	r.end(ticket)
	select {
	case m := <-got:
		if len(m) != 0 || out[7].Title != "late answer" {
			t.Fatalf("missing %v, took %v; want 7 found after its batch ended", m, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("take still waiting after the batch ended")
	}

	// Nothing in flight: a miss returns at once.
	start := time.Now()
	if m := r.take(context.Background(), []int64{8}, out); len(m) != 1 {
		t.Fatalf("missing %v, want [8]", m)
	}
	if d := time.Since(start); d > recentWait/2 {
		t.Fatalf("a miss with no batch in flight waited %v", d)
	}

	// A batch that never ends: the wait ends with the context.
	r.begin()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if m := r.take(ctx, []int64{9}, out); len(m) != 1 {
		t.Fatalf("missing %v, want [9]", m)
	}
}
