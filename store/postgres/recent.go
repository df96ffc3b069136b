package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/corp/herald/store"
)

const (
	// recentMax bounds the notifications an instance remembers having just
	// published: about a second of publishes at the rates one instance takes.
	recentMax = 1024
	// recentWait bounds how long the listener waits for this instance's
	// batches in flight before it reads a notification it does not have.
	recentWait = time.Second
)

// recentNotes keeps the contents of the notifications this instance just
// stored, so its listener hands them to local streams without reading them
// back: reading them again cost a round trip before every delivery and a
// tenth of the instance's CPU at 1,000 publishes/s. The contents are what
// the row holds, byte for byte (data is stored as sent, created_at is the
// millisecond the publish passed in), so a stream gets the same bytes live
// as on replay, and as streams on other instances get.
//
// A batch's NOTIFYs go out at its commit, which may be before the batch's
// answer reaches its worker (a publish without an Idempotency-Key commits
// on its own). So a worker marks its batch in flight (begin) until it has
// put what it stored (end), and the listener, missing a notification while
// batches begun before it looked are in flight, waits for them (at most
// recentWait) before it reads. What it still does not find (another
// instance's, a scheduled delivery, one evicted) it reads as before.
// Entries are taken once; the oldest are dropped past recentMax.
type recentNotes struct {
	mu      sync.Mutex
	byID    map[int64]store.Notification
	ring    [recentMax]int64 // IDs in the order they were put, for eviction
	next    int
	begun   uint64              // batches begun, the ticket of the next
	open    map[uint64]struct{} // tickets of the batches in flight
	changed chan struct{}       // closed (and replaced) when a batch ends

	hits, misses int64 // for tests and benchmarks
}

func newRecentNotes() *recentNotes {
	return &recentNotes{byID: make(map[int64]store.Notification, recentMax),
		open: make(map[uint64]struct{}, publishWorkers), changed: make(chan struct{})}
}

// begin marks a batch in flight; end(ticket) once its notifications are put.
func (r *recentNotes) begin() (ticket uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ticket = r.begun
	r.begun++
	r.open[ticket] = struct{}{}
	return ticket
}

func (r *recentNotes) end(ticket uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, ticket)
	close(r.changed)
	r.changed = make(chan struct{})
}

// put remembers n, dropping the oldest entry when full.
func (r *recentNotes) put(n store.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.ring[r.next]; old != 0 {
		delete(r.byID, old)
	}
	r.ring[r.next] = n.ID
	r.next = (r.next + 1) % recentMax
	r.byID[n.ID] = n
}

// take moves the remembered notifications among ids into out, waiting for
// the batches in flight when one is missing, and returns the ids it does
// not have.
func (r *recentNotes) take(ctx context.Context, ids []int64, out map[int64]store.Notification) (missing []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing = r.takeLocked(ids, out)
	if len(missing) > 0 && len(r.open) > 0 {
		r.waitLocked(ctx, r.begun)
		missing = r.takeLocked(missing, out)
	}
	r.hits += int64(len(ids) - len(missing))
	r.misses += int64(len(missing))
	return missing
}

func (r *recentNotes) takeLocked(ids []int64, out map[int64]store.Notification) (missing []int64) {
	for _, id := range ids {
		n, ok := r.byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		delete(r.byID, id)
		out[id] = n
	}
	return missing
}

// waitLocked waits, unlocking r.mu meanwhile, until no batch with a
// ticket below target is in flight, at most recentWait or until ctx ends.
func (r *recentNotes) waitLocked(ctx context.Context, target uint64) {
	t := time.NewTimer(recentWait)
	defer t.Stop()
	for !r.settledLocked(target) {
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			r.mu.Lock()
			return
		case <-ctx.Done():
			r.mu.Lock()
			return
		}
		r.mu.Lock()
	}
}

func (r *recentNotes) settledLocked(target uint64) bool {
	for t := range r.open {
		if t < target {
			return false
		}
	}
	return true
}
