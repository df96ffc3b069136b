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
	// SweepPause is the pause between two chunks of one sweep (default
	// 20 ms), so that a large backlog never keeps the database busy.
	SweepPause time.Duration
	Log        *slog.Logger
	// Delivered and Swept, when set, count what was delivered and deleted
	// (metrics).
	Delivered func(n int)
	Swept     func(n int)
}

const (
	dueBatch   = 100 // scheduled notifications per DeliverDue
	sweepBatch = 500 // rows per kind per Sweep chunk
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
		j.SweepPause = 20 * time.Millisecond
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

// sweepOnce deletes in chunks until a chunk finds little left, pausing
// between chunks.
func sweepOnce(ctx context.Context, c Center, j CenterJobs) {
	var older time.Time
	if j.Retention > 0 {
		older = time.Now().Add(-j.Retention)
	}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		n, err := c.Sweep(ctx, older, sweepBatch)
		if err != nil {
			if ctx.Err() == nil {
				j.Log.Warn("retention sweep failed; retrying later", "err", err)
			}
			return
		}
		if n > 0 && j.Swept != nil {
			j.Swept(n)
		}
		if n < sweepBatch {
			return
		}
		pause.Reset(j.SweepPause)
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}
