package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"
)

// Memory after connection bursts.
//
// A burst of new streams (a reconnect storm after a restart or a failover)
// leaves each handshake's garbage behind: request buffers, token parsing,
// net/http's per-connection buffers, which a taken-over stream gives up.
// Idle streams allocate almost nothing, so the next GC, which would free it,
// may be minutes away, and until then the burst costs RSS. Once a burst is
// over, Herald collects and returns the freed memory to the OS at once, so
// RSS reflects the streams held, not the storm that opened them.

// burstPolicy says what counts as a burst and what to do after one.
type burstPolicy struct {
	every   time.Duration // how often the stream count is read
	streams int           // new streams that make a burst worth compacting
	quiet   time.Duration // how long no new streams must arrive first
	free    func()        // what compacting does
}

// defaultBurstPolicy: 1,000 new streams, then 3 s without new ones.
var defaultBurstPolicy = burstPolicy{every: time.Second, streams: 1000, quiet: 3 * time.Second, free: debug.FreeOSMemory}

// compactAfterBursts watches the open-stream count and, after each burst,
// compacts once. It returns when ctx ends.
func compactAfterBursts(ctx context.Context, p burstPolicy, streams func() int, log *slog.Logger) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	last, burst := streams(), 0
	var quietSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := streams()
			if n > last {
				burst += n - last
				quietSince = now
			}
			last = n
			if burst >= p.streams && now.Sub(quietSince) >= p.quiet {
				start := time.Now()
				p.free()
				log.Debug("returned memory after a burst of streams", "streams", n, "burst", burst, "took", time.Since(start))
				burst = 0
			}
		}
	}
}
