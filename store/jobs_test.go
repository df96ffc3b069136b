package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// scripted is a Center whose DeliverDue and Sweep return the counts given,
// one per call, and record the calls; the other methods are not used.
type scripted struct {
	Center
	due, swept []int
	limits     []int
	olders     []time.Time
	fail       error
	// took, when set, is each Sweep call's Busy.
	took []time.Duration
}

func (s *scripted) DeliverDue(_ context.Context, limit int) (int, error) {
	s.limits = append(s.limits, limit)
	if len(s.due) == 0 {
		return 0, s.fail
	}
	n := s.due[0]
	s.due = s.due[1:]
	return n, nil
}

func (s *scripted) Sweep(_ context.Context, older time.Time, limit int) (SweepChunk, error) {
	s.limits = append(s.limits, limit)
	s.olders = append(s.olders, older)
	var busy time.Duration
	if len(s.took) > 0 {
		busy = s.took[0]
		s.took = s.took[1:]
	}
	if len(s.swept) == 0 {
		return SweepChunk{Busy: busy}, s.fail
	}
	n := s.swept[0]
	s.swept = s.swept[1:]
	return SweepChunk{Rows: n, Busy: busy}, nil
}

// TestDeliverDueRepeatsWhileFull: a full batch means more may be due, so
// it asks again at once; a short one ends the round. What is delivered is
// counted, and nothing is counted for an empty round.
func TestDeliverDueRepeatsWhileFull(t *testing.T) {
	c := &scripted{due: []int{dueBatch, dueBatch, dueBatch - 1, 5}}
	var counted []int
	deliverDue(context.Background(), c, CenterJobs{Delivered: func(n int) { counted = append(counted, n) }})
	if want := []int{dueBatch, dueBatch, dueBatch}; !slices.Equal(c.limits, want) {
		t.Fatalf("DeliverDue limits %v, want %v (stop after the short batch)", c.limits, want)
	}
	if want := []int{dueBatch, dueBatch, dueBatch - 1}; !slices.Equal(counted, want) {
		t.Fatalf("counted %v, want %v", counted, want)
	}
	c = &scripted{due: []int{0, 7}}
	counted = nil
	deliverDue(context.Background(), c, CenterJobs{Delivered: func(n int) { counted = append(counted, n) }})
	if len(c.limits) != 1 || counted != nil {
		t.Fatalf("an empty round made %d calls and counted %v; want 1 call, nothing counted", len(c.limits), counted)
	}
	var log bytes.Buffer
	c = &scripted{fail: errors.New("down")}
	deliverDue(context.Background(), c, CenterJobs{Log: slog.New(slog.NewTextHandler(&log, nil)), Delivered: func(int) { t.Fatal("counted a failure") }})
	if len(c.limits) != 1 {
		t.Fatalf("a failure was retried at once (%d calls); want the next tick", len(c.limits))
	}
	if !strings.Contains(log.String(), "down") {
		t.Fatalf("the failure was not logged: %q", log.String())
	}
	// A failure because the server is stopping is not worth a warning.
	log.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	c = &scripted{fail: errors.New("down")}
	cancel()
	deliverDue(ctx, c, CenterJobs{Log: slog.New(slog.NewTextHandler(&log, nil))})
	if len(c.limits) != 0 || log.Len() != 0 {
		t.Fatalf("with the context ended: %d calls, log %q; want none", len(c.limits), log.String())
	}
}

// TestSweepRepeatsWhileFull: the sweep goes on, chunk after chunk, while a
// chunk deletes a full batch, and keeps notifications when Retention is 0.
func TestSweepRepeatsWhileFull(t *testing.T) {
	c := &scripted{swept: []int{sweepFirst, 2*sweepFirst - 1, sweepBatch}}
	var counted []int
	before := time.Now()
	sweepOnce(context.Background(), c, CenterJobs{Retention: time.Hour, SweepPause: time.Nanosecond, Swept: func(n int) { counted = append(counted, n) }})
	// Each chunk took no time, so the next may be twice as large.
	if want := []int{sweepFirst, 2 * sweepFirst}; !slices.Equal(c.limits, want) {
		t.Fatalf("Sweep limits %v, want %v", c.limits, want)
	}
	if want := []int{sweepFirst, 2*sweepFirst - 1}; !slices.Equal(counted, want) {
		t.Fatalf("counted %v, want %v", counted, want)
	}
	for _, o := range c.olders {
		if o.After(before.Add(-time.Hour)) && o.Before(time.Now().Add(-time.Hour).Add(time.Second)) {
			continue
		}
		t.Fatalf("olderThan %v, want an hour ago", o)
	}
	c = &scripted{swept: []int{0, 1}}
	counted = nil
	sweepOnce(context.Background(), c, CenterJobs{Swept: func(n int) { counted = append(counted, n) }})
	if len(c.limits) != 1 || counted != nil || !c.olders[0].IsZero() {
		t.Fatalf("without retention: %d calls, counted %v, olderThan %v; want 1 call, nothing counted, zero time", len(c.limits), counted, c.olders[0])
	}
	var log bytes.Buffer
	c = &scripted{fail: errors.New("down")}
	sweepOnce(context.Background(), c, CenterJobs{Log: slog.New(slog.NewTextHandler(&log, nil)), Swept: func(int) { t.Fatal("counted a failure") }})
	if len(c.limits) != 1 || !strings.Contains(log.String(), "down") {
		t.Fatalf("a failed sweep made %d calls and logged %q; want 1, logged", len(c.limits), log.String())
	}
	// A sweep whose context ends between chunks stops there.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c = &scripted{swept: []int{sweepFirst, sweepFirst}}
	sweepOnce(ctx, c, CenterJobs{SweepPause: time.Hour})
	if len(c.limits) != 1 {
		t.Fatalf("a cancelled sweep made %d calls, want 1", len(c.limits))
	}
	log.Reset()
	c = &scripted{fail: errors.New("down")}
	sweepOnce(ctx, c, CenterJobs{Log: slog.New(slog.NewTextHandler(&log, nil))})
	if log.Len() != 0 {
		t.Fatalf("a sweep failing as the server stops logged %q", log.String())
	}
}

// TestSweepChunksFollowTheirTime: a chunk's rows follow from how long the
// one before took against SweepChunkTime, at most doubling or halving,
// within sweepMin..sweepBatch; the rest after a chunk is SweepPause or
// sweepRest times the chunk's time, whichever is longer.
func TestSweepChunksFollowTheirTime(t *testing.T) {
	ms := time.Millisecond
	c := &scripted{}
	// Each full chunk keeps the database busy for the time given; the last one is short and ends the sweep.
	c.took = []time.Duration{1 * ms, 1 * ms, 2 * ms, 12 * ms, 12 * ms, 12 * ms, 12 * ms, 12 * ms, 3 * ms, 0, 0, 0, 0, 0, 0, 0}
	wantLimits := []int{sweepFirst, 100, 200, 300, 150, 75, 37, 18, 10, 10, 20, 40, 80, 160, 320, 500}
	for _, l := range wantLimits[:len(wantLimits)-1] {
		c.swept = append(c.swept, l)
	}
	c.swept = append(c.swept, 0)
	var rests []time.Duration
	j := CenterJobs{SweepChunkTime: 3 * ms, SweepPause: 5 * ms, Log: slog.New(slog.DiscardHandler)}
	j.rest = func(_ context.Context, d time.Duration) bool { rests = append(rests, d); return true }
	sweepOnce(context.Background(), c, j)
	if !slices.Equal(c.limits, wantLimits) {
		t.Fatalf("chunk limits %v, want %v", c.limits, wantLimits)
	}
	// A rest after each full chunk: SweepPause (5 ms), or 3 times the chunk's time when longer.
	wantRests := []time.Duration{5 * ms, 5 * ms, 6 * ms, 36 * ms, 36 * ms, 36 * ms, 36 * ms, 36 * ms, 9 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms}
	if !slices.Equal(rests, wantRests) {
		t.Fatalf("rests %v, want %v", rests, wantRests)
	}
	// A rest cut short by the end of the context ends the sweep.
	c = &scripted{swept: []int{sweepFirst, sweepFirst}}
	j.rest = func(context.Context, time.Duration) bool { return false }
	sweepOnce(context.Background(), c, j)
	if len(c.limits) != 1 {
		t.Fatalf("after an interrupted rest the sweep made %d calls, want 1", len(c.limits))
	}
	for _, tc := range []struct {
		limit  int
		took   time.Duration
		target time.Duration
		want   int
	}{
		{100, 3 * ms, 3 * ms, 100},      // on target: unchanged
		{100, 6 * ms, 3 * ms, 50},       // twice too long: half
		{100, 60 * ms, 3 * ms, 50},      // far too long: still only half
		{100, 1 * ms, 3 * ms, 200},      // a third of the time: at most double
		{100, 2 * ms, 3 * ms, 150},      // in between: in proportion
		{12, 60 * ms, 3 * ms, sweepMin}, // never below sweepMin
		{400, 0, 3 * ms, sweepBatch},    // no measurable time: double, capped
	} {
		if got := nextSweepLimit(tc.limit, tc.took, tc.target, sweepBatch); got != tc.want {
			t.Errorf("nextSweepLimit(%d, %v, %v) = %d, want %d", tc.limit, tc.took, tc.target, got, tc.want)
		}
	}
	// SweepMaxRows (PostgreSQL's 2,000) replaces sweepBatch as the cap.
	if got := nextSweepLimit(1500, 0, 20*ms, 2000); got != 2000 {
		t.Errorf("nextSweepLimit(1500, 0, 20ms, 2000) = %d, want 2000", got)
	}
	c = &scripted{swept: []int{sweepFirst, 100, 200, 400, 800, 0}}
	j.rest = func(context.Context, time.Duration) bool { return true }
	j.SweepMaxRows = 400
	sweepOnce(context.Background(), c, j)
	if want := []int{sweepFirst, 100, 200, 400, 400, 400}; !slices.Equal(c.limits, want) {
		t.Fatalf("with SweepMaxRows 400: chunk limits %v, want %v", c.limits, want)
	}
}

// signalling is a failing Center that reports its first DeliverDue and
// Sweep calls (RunCenter calls them from its own goroutine).
type signalling struct {
	Center
	due, swept chan struct{}
}

func (s *signalling) DeliverDue(context.Context, int) (int, error) {
	select {
	case s.due <- struct{}{}:
	default:
	}
	return 0, errors.New("down")
}

func (s *signalling) Sweep(context.Context, time.Time, int) (SweepChunk, error) {
	select {
	case s.swept <- struct{}{}:
	default:
	}
	return SweepChunk{}, errors.New("down")
}

// TestRunCenter: RunCenter runs both jobs on their tickers, with the zero
// CenterJobs (the defaults, no logger) as with its own settings, and ends
// when its context does. The failures are logged to the default logger,
// which must exist.
func TestRunCenter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	RunCenter(ctx, &signalling{}, CenterJobs{}) // the defaults: returns at once

	s := &signalling{due: make(chan struct{}, 1), swept: make(chan struct{}, 1)}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunCenter(ctx, s, CenterJobs{DueEvery: time.Millisecond, FirstSweep: time.Millisecond, SweepEvery: time.Millisecond})
	}()
	for _, c := range []chan struct{}{s.due, s.swept} {
		select {
		case <-c:
		case <-time.After(30 * time.Second):
			t.Fatal("a job did not run within 30s of a 1 ms ticker")
		}
	}
	cancel()
	<-done
}
