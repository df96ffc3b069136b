package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corp/herald/store"
)

// Publishing in batches. A NOTIFY makes PostgreSQL serialize the commits of
// the transactions that send one (a global lock held through the commit's
// WAL flush), so one transaction per publish caps an instance at a few
// hundred publishes per second. The batcher runs the publishes that arrive
// while another batch is being written as one statement: one round trip,
// one commit, one flush for all of them (group commit). Under low load a
// batch holds one publish and costs what a lone statement would.
//
// One batch is in flight at a time, as long as it is quick: two batches
// written side by side wait for each other's commit and share the
// database's CPU, and at 1,000 unicast publishes/s every batch took about
// 1.7 times as long, with more of Herald's CPU per publish and a higher
// p99 (BENCHMARKS.md). A slow batch (a broadcast to 10,000 takes about
// 0.3 s, a row lock held elsewhere can take longer) must not hold every
// other publish back, though: once the batch in flight has run for
// spareAfter, the second worker writes the next batch beside it.
const (
	// publishWorkers is how many batches may be in flight at once.
	publishWorkers = 2
	// spareAfter is how long a batch runs alone before the next one may
	// start beside it.
	spareAfter = 20 * time.Millisecond
	// maxPublishBatch and maxBatchBytes bound one batch.
	maxPublishBatch = 256
	maxBatchBytes   = 1 << 20
)

// A request's state: queued until a worker takes it into a batch, or until
// its publisher stops waiting (abandoned). Whoever moves it first decides:
// an abandoned request is never written; a taken one may be, so its
// publisher cannot say that nothing was.
const (
	queued int32 = iota
	taken
	abandoned
)

// errClosed answers publishes made after Close.
var errClosed = errors.New("postgres: store closed")

// batcher owns the publish workers. Publish hands it requests; Close stops it.
type batcher struct {
	db   *DB
	reqs chan *publishRequest
	quit chan struct{}
	wg   sync.WaitGroup

	mu     sync.RWMutex // held for reading while a request is queued; guards closed
	closed bool

	flight  sync.Mutex
	started [publishWorkers]time.Time // when each worker's batch in flight began; zero when idle
	waiting int                       // workers holding a request, waiting for their turn
	ended   chan struct{}             // closed (and replaced) when a batch ends
	taken   chan struct{}             // closed (and replaced) when a waiting worker takes its turn
}

type publishRequest struct {
	m    store.Message
	idem *store.Idempotency // nil without an Idempotency-Key
	size int                // bytes of content, for maxBatchBytes
	res  store.PublishResult
	err  error
	done chan struct{}
	// state is queued, taken or abandoned (see above).
	state atomic.Int32
}

func newBatcher(db *DB) *batcher {
	b := &batcher{db: db, reqs: make(chan *publishRequest, maxPublishBatch), quit: make(chan struct{}),
		ended: make(chan struct{}), taken: make(chan struct{})}
	b.wg.Add(publishWorkers)
	for w := range publishWorkers {
		go b.work(w)
	}
	return b
}

// close stops the workers after the batches in flight; requests still
// queued are answered with errClosed. It is safe to call more than once.
func (b *batcher) close() {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if already {
		return
	}
	close(b.quit)
	b.wg.Wait()
	b.refuseQueued()
}

// publish queues m and waits for its batch. A request that no worker has
// taken within the call timeout (the workers are stuck on a database that
// does not answer) is abandoned, and answered ErrUnavailable: it will not
// be written. Once taken, it waits for its batch, which is bounded itself.
func (b *batcher) publish(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	r := &publishRequest{m: m, idem: idem, size: len(m.Title) + len(m.Body) + len(m.Data) + 256,
		done: make(chan struct{})}
	wait, cancel := context.WithTimeout(ctx, b.db.opts.callTimeout)
	defer cancel()
	if err := b.enqueue(wait, r); err != nil {
		return store.PublishResult{}, wrap(ctx, "publish: queue", err)
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-wait.Done():
	}
	if r.state.CompareAndSwap(queued, abandoned) {
		return store.PublishResult{}, wrap(ctx, "publish: no connection free", wait.Err())
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return store.PublishResult{}, fmt.Errorf("publish: %w", ctx.Err())
	}
}

// enqueue hands r to the workers. Once it is queued, r is always answered:
// close waits for the enqueues in progress, then answers what is left.
func (b *batcher) enqueue(ctx context.Context, r *publishRequest) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	select {
	case b.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// work runs batches until the batcher closes; w is the worker's number.
func (b *batcher) work(w int) {
	defer b.wg.Done()
	for {
		select {
		case <-b.quit:
			return
		case r := <-b.reqs:
			b.takeTurn(w)
			b.run(b.collect(r))
			b.endTurn(w)
		}
	}
}

// takeTurn returns when worker w may start a batch: no other batch is in
// flight, or every one in flight has run for spareAfter. What arrives
// meanwhile joins w's batch. At close it returns at once: the batches in
// flight end by themselves, and a queued request is answered either way.
func (b *batcher) takeTurn(w int) {
	registered := false
	for {
		b.flight.Lock()
		now := time.Now()
		wait := time.Duration(0)
		for i, t := range b.started {
			if i != w && !t.IsZero() {
				wait = max(wait, spareAfter-now.Sub(t))
			}
		}
		select {
		case <-b.quit:
			wait = 0
		default:
		}
		if wait <= 0 {
			b.started[w] = now
			if registered {
				b.waiting--
				close(b.taken)
				b.taken = make(chan struct{})
			}
			b.flight.Unlock()
			return
		}
		if !registered {
			b.waiting++
			registered = true
		}
		ended := b.ended
		b.flight.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ended:
		case <-t.C:
		case <-b.quit:
		}
		t.Stop()
	}
}

// endTurn records that worker w's batch has ended and wakes a worker
// waiting for its turn. That worker holds the oldest request, so w waits
// until it has started before taking a new one: otherwise w could take a
// newer request, start first, and make the older one wait another batch.
func (b *batcher) endTurn(w int) {
	b.flight.Lock()
	b.started[w] = time.Time{}
	close(b.ended)
	b.ended = make(chan struct{})
	var taken chan struct{}
	if b.waiting > 0 {
		taken = b.taken
	}
	b.flight.Unlock()
	if taken != nil {
		select {
		case <-taken:
		case <-b.quit:
		}
	}
}

// collect adds to first the requests already waiting, within the bounds.
func (b *batcher) collect(first *publishRequest) []*publishRequest {
	batch := []*publishRequest{first}
	size := first.size
	for len(batch) < maxPublishBatch && size < maxBatchBytes {
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
			size += r.size
		default:
			return batch
		}
	}
	return batch
}

// refuseQueued answers the requests left in the queue at close.
func (b *batcher) refuseQueued() {
	for {
		select {
		case r := <-b.reqs:
			r.err = fmt.Errorf("publish: %w", errClosed)
			close(r.done)
		default:
			return
		}
	}
}

// run writes one batch and answers its requests. When the batch fails for
// a reason other than the database being unavailable, one message may be at
// fault: each is then retried alone, so only that one fails. A request
// whose Idempotency-Key repeats one earlier in the batch waits for the
// batch and then runs alone (it finds the key answered).
func (b *batcher) run(batch []*publishRequest) {
	var live, again []*publishRequest
	keys := make(map[store.Idempotency]bool)
	for _, r := range batch {
		if !r.state.CompareAndSwap(queued, taken) {
			close(r.done) // abandoned: its publisher has gone
			continue
		}
		if r.idem != nil {
			k := store.Idempotency{Owner: r.idem.Owner, Key: r.idem.Key}
			if keys[k] {
				again = append(again, r)
				continue
			}
			keys[k] = true
		}
		live = append(live, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.db.opts.callTimeout)
	defer cancel()
	if len(live) > 0 {
		err := b.db.writeBatch(ctx, live)
		if err != nil && len(live) > 1 && !unavailable(err) && !errors.Is(err, store.ErrOutcomeUnknown) {
			b.db.log.Warn("a batch of publishes failed; retrying them one by one", "publishes", len(live), "err", err)
			again = append(live, again...)
		} else {
			answer(ctx, live, err)
		}
	}
	for _, r := range again {
		r.res, r.err = store.PublishResult{}, nil // from the failed batch, if any
		answer(ctx, []*publishRequest{r}, b.db.writeBatch(ctx, []*publishRequest{r}))
	}
}

// answer releases the waiting publishers of reqs; err, when set, is the
// whole batch's.
func answer(ctx context.Context, reqs []*publishRequest, err error) {
	for _, r := range reqs {
		if err != nil {
			r.res, r.err = store.PublishResult{}, err
		}
		r.err = wrap(ctx, "publish", r.err)
		close(r.done)
	}
}
