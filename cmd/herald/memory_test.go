package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCompactAfterBursts: one compaction per burst, once it has settled; none
// for a trickle of streams or while the burst goes on. It runs in a
// synctest bubble: the ticker and the sleeps are on a fake clock that moves
// only when every goroutine waits, so a loaded machine cannot make the
// 5 ms ticker miss the 30 ms window.
func TestCompactAfterBursts(t *testing.T) {
	synctest.Test(t, testCompactAfterBursts)
}

func testCompactAfterBursts(t *testing.T) {
	var streams, freed atomic.Int64
	p := burstPolicy{every: 5 * time.Millisecond, streams: 100, quiet: 30 * time.Millisecond, free: func() { freed.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		compactAfterBursts(ctx, p, func() int { return int(streams.Load()) }, slog.New(slog.DiscardHandler))
	}()
	waitFreed := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for freed.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("compactions = %d, want %d", freed.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	streams.Add(50) // a trickle: no burst
	time.Sleep(100 * time.Millisecond)
	if freed.Load() != 0 {
		t.Fatalf("compacted after %d new streams, below the burst size", streams.Load())
	}
	streams.Add(500) // the burst
	waitFreed(1)
	time.Sleep(100 * time.Millisecond)
	if n := freed.Load(); n != 1 {
		t.Fatalf("compacted %d times for one burst", n)
	}
	streams.Store(0) // everyone leaves, then a second storm
	time.Sleep(30 * time.Millisecond)
	streams.Add(300)
	waitFreed(2)
	cancel()
	<-done
}
