package store

import (
	"context"
	"log/slog"
	"time"
)

// CenterJobs configures RunCenter.
type CenterJobs struct {
	// Retention is how long notifications are kept; 0 keeps them (expired
	// ones and old idempotency keys are deleted anyway).
	Retention time.Duration
	// DueEvery is how often scheduled notifications are looked for
	// (default 250 ms: a scheduled notification is delivered that soon
	// after its time).
	DueEvery time.Duration
	// FirstSweep is when the first retention sweep starts (default 10 s):
	// soon after start, so that an instance restarted more often than
	// SweepEvery (deploys, a crash loop) still sweeps.
	FirstSweep time.Duration
	// SweepEvery is the wait between the end of one sweep and the start of
	// the next (default 1 min).
	SweepEvery time.Duration
	// SweepPause is the least pause between two chunks of one sweep
	// (default 10 ms), so that a large backlog never keeps the database
	// busy.
	SweepPause time.Duration
	// SweepChunkTime is how long one chunk of a sweep should keep the
	// database busy (default 3 ms; SweepChunk.Busy). The rows a chunk
	// deletes adapt to it (between sweepMin and SweepMaxRows per kind),
	// and the pause after a chunk is at least sweepRest times what the
	// chunk took, so a sweep holds the database at most about a quarter of
	// the time. On SQLite a chunk runs on the one writer, and publishes
	// that arrive meanwhile wait for it: a short chunk bounds what the
	// sweep adds to their latency. PostgreSQL's publishes do not wait for
	// the sweep's deletes, so its chunks may be longer (cmd/herald gives it
	// 20 ms), which spends less of each chunk on its fixed costs.
	SweepChunkTime time.Duration
	// SweepMaxRows is the most rows of each kind one chunk deletes
	// (default 500).
	SweepMaxRows int
	// rest is a sweep's wait between chunks (tests set it); it reports
	// false when ctx ended first.
	rest func(ctx context.Context, d time.Duration) bool
	Log  *slog.Logger
	// Delivered and Swept, when set, count what was delivered and deleted
	// (metrics).
	Delivered func(n int)
	Swept     func(n int)
}

const (
	dueBatch   = 100 // scheduled notifications per DeliverDue
	sweepBatch = 500 // most rows per kind per Sweep chunk, unless SweepMaxRows says otherwise
	sweepMin   = 10  // fewest rows per kind per Sweep chunk
	sweepFirst = 50  // rows per kind of a sweep's first chunk
	sweepRest  = 3   // a chunk is followed by at least this many times its Busy of rest
)

// RunCenter delivers scheduled notifications at their time and runs the
// retention sweep, until ctx ends. Errors are logged and retried at the
// next tick. Every instance runs it; the store makes sure each scheduled
// notification is delivered once and (on PostgreSQL) that one sweep runs
// at a time.
func RunCenter(ctx context.Context, c Center, j CenterJobs) {
	if j.DueEvery <= 0 {
		j.DueEvery = 250 * time.Millisecond
	}
	if j.SweepEvery <= 0 {
		j.SweepEvery = time.Minute
	}
	if j.FirstSweep <= 0 {
		j.FirstSweep = 10 * time.Second
	}
	if j.SweepPause <= 0 {
		j.SweepPause = 10 * time.Millisecond
	}
	if j.SweepChunkTime <= 0 {
		j.SweepChunkTime = 3 * time.Millisecond
	}
	if j.Log == nil {
		j.Log = slog.New(slog.DiscardHandler)
	}
	due := time.NewTicker(j.DueEvery)
	defer due.Stop()
	sweep := time.NewTimer(j.FirstSweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-due.C:
			deliverDue(ctx, c, j)
		case <-sweep.C:
			sweepOnce(ctx, c, j)
			sweep.Reset(j.SweepEvery)
		}
	}
}

func deliverDue(ctx context.Context, c Center, j CenterJobs) {
	for ctx.Err() == nil {
		n, err := c.DeliverDue(ctx, dueBatch)
		if err != nil {
			if ctx.Err() == nil {
				j.Log.Warn("delivering scheduled notifications failed; retrying", "err", err)
			}
			return
		}
		if n > 0 && j.Delivered != nil {
			j.Delivered(n)
		}
		if n < dueBatch {
			return
		}
	}
}

// sweepOnce deletes in chunks until a chunk finds less than it may
// delete, resting between chunks. Each chunk's size follows from how long
// the previous one took (nextSweepLimit).
func sweepOnce(ctx context.Context, c Center, j CenterJobs) {
	var older time.Time
	if j.Retention > 0 {
		older = time.Now().Add(-j.Retention)
	}
	rest := j.rest
	if rest == nil {
		rest = sleep
	}
	most := j.SweepMaxRows
	if most <= 0 {
		most = sweepBatch
	}
	limit := min(sweepFirst, most)
	for {
		chunk, err := c.Sweep(ctx, older, limit)
		n, took := chunk.Rows, chunk.Busy
		if err != nil {
			if ctx.Err() == nil {
				j.Log.Warn("retention sweep failed; retrying later", "err", err)
			}
			return
		}
		if n > 0 && j.Swept != nil {
			j.Swept(n)
		}
		if n < limit {
			return
		}
		limit = nextSweepLimit(limit, took, j.SweepChunkTime, max(most, sweepMin))
		if !rest(ctx, max(j.SweepPause, sweepRest*took)) {
			return
		}
	}
}

// sleep waits d, or less if ctx ends first (then it reports false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// nextSweepLimit is the next chunk's rows per kind: scaled by how far the
// last chunk's duration was from target, by at most a factor of two
// either way (one slow chunk, a publish burst queued before it, should not
// collapse the sweep), within sweepMin..most.
func nextSweepLimit(limit int, took, target time.Duration, most int) int {
	next := 2 * limit
	if took > 0 {
		next = int(float64(limit) * float64(target) / float64(took))
	}
	next = min(max(next, limit/2, sweepMin), 2*limit, most)
	return next
}
