package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// sweepCenter is a Center whose Sweep reports its calls; the other calls
// find nothing to do.
type sweepCenter struct {
	store.Center
	swept chan time.Time
}

func (c sweepCenter) DeliverDue(context.Context, int) (int, error) { return 0, nil }

func (c sweepCenter) Sweep(_ context.Context, olderThan time.Time, _ int) (store.SweepChunk, error) {
	c.swept <- olderThan
	return store.SweepChunk{}, nil
}

// TestRunCenterSweepsSoonAfterStart: the first sweep comes after
// FirstSweep, not after SweepEvery, so an instance restarted more often
// than SweepEvery still sweeps; it deletes what is older than Retention.
func TestRunCenterSweepsSoonAfterStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := sweepCenter{swept: make(chan time.Time, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.RunCenter(ctx, c, store.CenterJobs{Retention: 48 * time.Hour, FirstSweep: time.Millisecond, SweepEvery: time.Hour, DueEvery: time.Hour})
	}()
	defer func() { cancel(); <-done }()
	select {
	case older := <-c.swept:
		if age := time.Since(older); age < 48*time.Hour || age > 49*time.Hour {
			t.Errorf("swept what is older than %v ago, want 48h", age)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep within 30s of start with FirstSweep 1ms and SweepEvery 1h")
	}
}
