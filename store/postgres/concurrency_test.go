package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestOverlappingPublishersOnTwoHandles publishes from many goroutines on
// two store handles (two instances) to overlapping recipient sets, given in
// random order, mixed with broadcasts and role targets. Nothing may
// deadlock or fail; every employee's seqs are gapless; each instance's sink
// sees every employee's seqs in increasing order without gaps.
func TestOverlappingPublishersOnTwoHandles(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := mustOpenURL(t, url), mustOpenURL(t, url)
	storetest.Seed(t, a, 12, 4)
	ha, hb := storetest.NewHarness(t, a), storetest.NewHarness(t, b)

	const workers, each = 8, 25 // per handle
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	published := make(map[int64]int) // employee → copies, from the answers
	var mu sync.Mutex
	for _, st := range []store.Store{a, b} {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for i := range each {
					var to store.Targets
					for _, j := range rng.Perm(12)[:1+rng.IntN(6)] {
						to.Employees = append(to.Employees, int64(j+1))
					}
					switch i % 10 {
					case 3:
						to = store.Targets{All: true}
					case 7:
						to = store.Targets{Roles: []string{"admin"}, Employees: []int64{12, 1}}
					}
					m := store.Message{To: to, Type: "race", Title: fmt.Sprintf("w%d-%d", w, i)}
					if _, err := st.Publish(context.Background(), m, nil); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for _, id := range recipientsOf(to) {
						published[id]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent publish failed (a deadlock?): %v", err)
	}
	total := 0
	for _, n := range published {
		total += n
	}
	for _, h := range []*storetest.Harness{ha, hb} {
		h.Sink.Wait(t, "every copy", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool {
			n := 0
			for _, x := range d {
				n += len(x.Recipients)
			}
			return n == total
		})
		last := map[int64]int64{}
		for _, d := range h.Sink.Deliveries() {
			for _, r := range d.Recipients {
				if r.Seq != last[r.Employee]+1 {
					t.Fatalf("employee %d: delivered seq %d after %d; want commit order without gaps", r.Employee, r.Seq, last[r.Employee])
				}
				last[r.Employee] = r.Seq
			}
		}
	}
	for id, n := range published {
		items, err := a.Since(context.Background(), id, 0, 10000)
		if err != nil || len(items) != n {
			t.Fatalf("employee %d has %d stored copies (%v), want %d", id, len(items), err, n)
		}
		for i, it := range items {
			if it.Seq != int64(i+1) {
				t.Fatalf("employee %d: seq %d at position %d; want gapless 1..%d", id, it.Seq, i, n)
			}
		}
	}
}

// recipientsOf expands the targets the race test uses (employees 1..12,
// admins 1..4).
func recipientsOf(t store.Targets) []int64 {
	var ids []int64
	switch {
	case t.All:
		for i := int64(1); i <= 12; i++ {
			ids = append(ids, i)
		}
	case len(t.Roles) > 0:
		ids = []int64{1, 2, 3, 4, 12}
	default:
		ids = slices.Clone(t.Employees)
	}
	return ids
}

// TestConcurrentIdempotentRetries sends the same publish with the same key
// from many goroutines on two handles at once: exactly one creates the
// notification, every other answer is that one, replayed.
func TestConcurrentIdempotentRetries(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := mustOpenURL(t, url), mustOpenURL(t, url)
	storetest.Seed(t, a, 2, 0)
	m := store.Message{To: store.Targets{Employees: []int64{1, 2, 9}}, Type: "t", Title: "once"}
	idem := &store.Idempotency{Owner: "svc", Key: "k-1", Hash: "h"}
	const n = 12
	results := make(chan store.PublishResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			res, err := st.Publish(context.Background(), m, idem)
			if err != nil {
				t.Errorf("retry %d: %v", i, err)
				return
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	created, id := 0, int64(0)
	for res := range results {
		if !res.Replayed {
			created++
		}
		if id != 0 && res.NotificationID != id {
			t.Fatalf("answers name notifications %d and %d; want one", id, res.NotificationID)
		}
		id = res.NotificationID
		if res.Recipients != 2 || !slices.Equal(res.Unknown.Employees, []int64{9}) {
			t.Fatalf("answer %+v, want 2 recipients and 9 unknown", res)
		}
	}
	if created != 1 {
		t.Fatalf("%d publishes created a notification; want exactly 1", created)
	}
	for _, e := range []int64{1, 2} {
		if head, _ := a.Head(context.Background(), e); head != 1 {
			t.Fatalf("employee %d has head %d, want 1", e, head)
		}
	}
	_, err := b.Publish(context.Background(), m, &store.Idempotency{Owner: "svc", Key: "k-1", Hash: "other"})
	if !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other request: %v, want ErrIdempotencyMismatch", err)
	}
}

// TestMixedBatches publishes concurrently with and without keys, with
// repeated keys and with a key reused for another request, so batches mix
// them: every answer is right and every notification is stored once.
func TestMixedBatches(t *testing.T) {
	db := MustOpen(t)
	storetest.Seed(t, db, 1, 0)
	const n = 60
	type outcome struct {
		i   int
		res store.PublishResult
		err error
	}
	out := make(chan outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: fmt.Sprint("m", i)}
			var idem *store.Idempotency
			switch i % 4 {
			case 1: // a key of its own
				idem = &store.Idempotency{Owner: "svc", Key: fmt.Sprint("own", i), Hash: "h"}
			case 2: // one key shared by every i%4 == 2, same request
				m.Title = "shared"
				idem = &store.Idempotency{Owner: "svc", Key: "shared", Hash: "same"}
			case 3: // the key "own1" again, for another request
				idem = &store.Idempotency{Owner: "svc", Key: "own1", Hash: "other"}
			}
			res, err := db.Publish(context.Background(), m, idem)
			out <- outcome{i, res, err}
		}()
	}
	wg.Wait()
	close(out)
	created, sharedCreated := 0, 0
	for o := range out {
		switch {
		case o.i%4 == 3:
			// "own1" may not be claimed yet: then this request claims it
			// first, and publisher 1 is the mismatch.
			if o.err != nil && !errors.Is(o.err, store.ErrIdempotencyMismatch) {
				t.Fatalf("publish %d: %v", o.i, o.err)
			}
		case o.err != nil:
			if o.i == 1 && errors.Is(o.err, store.ErrIdempotencyMismatch) {
				continue
			}
			t.Fatalf("publish %d: %v", o.i, o.err)
		}
		if o.err == nil && !o.res.Replayed {
			created++
			if o.i%4 == 2 {
				sharedCreated++
			}
		}
	}
	if sharedCreated != 1 {
		t.Fatalf("the shared key created %d notifications, want 1", sharedCreated)
	}
	head, _ := db.Head(context.Background(), 1)
	if int(head) != created {
		t.Fatalf("%d answers say created, but employee 1 has %d notifications", created, head)
	}
}
