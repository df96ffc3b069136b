package main

import (
	"context"
	"strings"
	"sync"
	"time"
)

// RetentionReport is what the retention sweep did during a run with
// --old-rows: how much it deleted, while publishing and before, how long
// of the publishing it was deleting, and what was left of the old rows at
// the end. Deleted rows are Herald's count (herald_retention_deleted_rows_total,
// all instances): a notification and its copy are two rows.
type RetentionReport struct {
	OldRows int `json:"old_rows"`
	// Retention is false when the server ran with RETENTION=0 (the
	// baseline of the same load without the sweep).
	Retention      bool    `json:"retention"`
	DeletedBefore  float64 `json:"deleted_before_publishing"`
	DeletedDuring  float64 `json:"deleted_while_publishing"`
	DeletedTotal   float64 `json:"deleted_total"`
	SweepSeconds   float64 `json:"sweeping_while_publishing_s"`
	PublishSeconds float64 `json:"publishing_s"`
	// Left is how many of the old notifications were still stored at the
	// end (-1: could not be counted).
	Left int64 `json:"old_left"`
}

// retentionOn reports whether the spawned server keeps RETENTION on: the
// bench passes RETENTION=0 through --server-env for the baseline.
func retentionOn(env []string) bool {
	on := true
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "RETENTION" {
			on = strings.TrimSpace(v) != "0"
		}
	}
	return on
}

const deletedMetric = "herald_retention_deleted_rows_total"

// sweepWatch samples the servers' deleted-rows counter every second.
type sweepWatch struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex // guards samples
	samples []sweepSample
}

type sweepSample struct {
	at   time.Time
	rows float64
}

// watchSweep starts sampling; close ends it.
func (r *runner) watchSweep(ctx context.Context) *sweepWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &sweepWatch{stop: cancel, done: make(chan struct{})}
	read := func() {
		var rows float64
		for _, u := range r.urls {
			rows += scrapeMetrics(ctx, r.client, u, deletedMetric)[deletedMetric]
		}
		if ctx.Err() == nil {
			w.mu.Lock()
			w.samples = append(w.samples, sweepSample{time.Now(), rows})
			w.mu.Unlock()
		}
	}
	read()
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				read()
			}
		}
	}()
	return w
}

func (w *sweepWatch) close() {
	w.stop()
	<-w.done
}

// summarize reads the samples against the publishing window [from, to].
func (w *sweepWatch) summarize(from, to time.Time) RetentionReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	var rep RetentionReport
	rep.PublishSeconds = to.Sub(from).Seconds()
	if len(w.samples) == 0 {
		return rep
	}
	before, during := w.samples[0].rows, w.samples[0].rows
	for i, s := range w.samples {
		if !s.at.After(from) {
			before = s.rows
		}
		if !s.at.After(to) {
			during = s.rows
		}
		rep.DeletedTotal = s.rows
		if i == 0 {
			continue
		}
		prev := w.samples[i-1]
		// An interval in which rows went counts as sweeping, for its part
		// inside the window.
		if s.rows > prev.rows {
			lo, hi := maxTime(prev.at, from), minTime(s.at, to)
			if hi.After(lo) {
				rep.SweepSeconds += hi.Sub(lo).Seconds()
			}
		}
	}
	rep.DeletedBefore = before
	rep.DeletedDuring = during - before
	return rep
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
