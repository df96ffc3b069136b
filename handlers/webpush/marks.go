package webpush

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/corp/herald/store"
)

// Marks gathers the copies streams wrote (the hub's WrittenFunc) and
// records them in the store in one write per interval, so that every
// instance's decision knows a copy reached an open stream anywhere. The
// streams' writes only take a shard's lock and extend a range; the store
// sees one call per interval, whatever the traffic.
type Marks struct {
	st       store.Push
	interval time.Duration
	log      *slog.Logger
	shards   [markShards]markShard
}

// markShards spreads the writers of many streams over several locks.
const markShards = 32

type markShard struct {
	mu     sync.Mutex // guards ranges
	ranges map[int64][]store.Streamed
}

// NewMarks returns Marks that write to st every interval once Run runs.
func NewMarks(st store.Push, interval time.Duration, log *slog.Logger) *Marks {
	m := &Marks{st: st, interval: interval, log: log}
	for i := range m.shards {
		m.shards[i].ranges = map[int64][]store.Streamed{}
	}
	return m
}

// Written records that a stream wrote the employee's copies from..to. It
// is the hub's WrittenFunc: it never blocks on the store.
func (m *Marks) Written(employee, from, to int64) {
	sh := &m.shards[uint64(employee)%markShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rs := sh.ranges[employee]
	// Tabs of one employee write the same seqs: extend the last range when
	// the new one touches it.
	if n := len(rs); n > 0 && from <= rs[n-1].To+1 && to >= rs[n-1].From-1 {
		rs[n-1].From, rs[n-1].To = min(rs[n-1].From, from), max(rs[n-1].To, to)
		return
	}
	sh.ranges[employee] = append(rs, store.Streamed{Employee: employee, From: from, To: to})
}

// take empties the shards and returns what they held.
func (m *Marks) take() []store.Streamed {
	var out []store.Streamed
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, rs := range sh.ranges {
			out = append(out, rs...)
		}
		clear(sh.ranges)
		sh.mu.Unlock()
	}
	return out
}

// Flush writes what was gathered. On failure the marks are kept for the
// next flush.
func (m *Marks) Flush(ctx context.Context) error {
	marks := m.take()
	if len(marks) == 0 {
		return nil
	}
	if err := m.st.MarkStreamed(ctx, marks); err != nil {
		for _, r := range marks {
			m.Written(r.Employee, r.From, r.To)
		}
		return err
	}
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (m *Marks) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := m.Flush(fctx); err != nil {
				m.log.Warn("web push: streamed marks not saved at shutdown", "err", err)
			}
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := m.Flush(fctx); err != nil {
				m.log.Warn("web push: streamed marks not saved; retrying", "err", err)
			}
			cancel()
		}
	}
}
