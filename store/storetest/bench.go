package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// BenchOpener returns a fresh, empty, migrated store for a benchmark; it
// registers its own cleanup.
type BenchOpener func(tb testing.TB) store.Store

// BenchPublish measures persisted publishing on a store, the same way for
// every implementation (each dialect's tests call it with their opener):
//
//   - unicast: one recipient per publish, out of 10,000 employees;
//   - unicast-parallel: the same from 8 goroutines per core at once, as
//     concurrent requests on a server (what batching concurrent publishes
//     into one transaction speeds up);
//   - broadcast=N: one publish to all N employees (N copies, N seqs).
//
// A listener with a counting sink runs throughout, so each publish also
// builds and hands over its delivery, as on a server. Directories are
// seeded once per run, outside the timed loops. Besides wall time each
// benchmark reports cpu-ns/op, the CPU time (user and system, all threads)
// the test process spent per publish: on a busy machine it varies less than
// wall time, and it is the whole cost for an embedded store (a server
// store's own CPU is not in it).
func BenchPublish(b *testing.B, open BenchOpener) {
	big := newBenchStore(b, open, 10_000)
	b.Run("unicast", func(b *testing.B) {
		var i int64
		big.loop(b, 1, func() store.Targets {
			i++
			return store.Targets{Employees: []int64{i%10_000 + 1}}
		})
	})
	b.Run("unicast-parallel", func(b *testing.B) {
		var i atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(8)
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := i.Add(1)%10_000 + 1
				if _, err := big.st.Publish(context.Background(), benchMessage(store.Targets{Employees: []int64{id}}), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
		reportCPU(b, cpu)
	})
	small := newBenchStore(b, open, 1_000)
	b.Run("broadcast=1000", func(b *testing.B) {
		small.loop(b, 1_000, func() store.Targets { return store.Targets{All: true} })
	})
	b.Run("broadcast=10000", func(b *testing.B) {
		big.loop(b, 10_000, func() store.Targets { return store.Targets{All: true} })
	})
}

// benchStore is a seeded store with a listener counting deliveries.
type benchStore struct {
	st   store.Store
	sink *countingSink
}

func newBenchStore(b *testing.B, open BenchOpener, employees int) *benchStore {
	b.Helper()
	st := open(b)
	sink := &countingSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Listen(ctx, sink) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("Listen returned %v", err)
		}
	})
	Seed(b, st, employees, 0)
	return &benchStore{st: st, sink: sink}
}

// loop publishes b.N times to the targets next returns, checking each
// publish reached recipients employees, and reports recipients per second.
func (s *benchStore) loop(b *testing.B, recipients int, next func() store.Targets) {
	ctx := context.Background()
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		res, err := s.st.Publish(ctx, benchMessage(next()), nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Recipients != recipients {
			b.Fatalf("publish reached %d recipients, want %d", res.Recipients, recipients)
		}
	}
	b.ReportMetric(float64(b.N*recipients)/b.Elapsed().Seconds(), "copies/s")
	reportCPU(b, cpu)
}

// reportCPU reports the process CPU time used since start per iteration.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

func benchMessage(to store.Targets) store.Message {
	return store.Message{
		To: to, Type: "bench.publish", Title: "Your request was approved",
		Body: "Vacation 2026-12-01 … 2026-12-05", Data: []byte(`{"request_id":481}`), Publisher: "bench",
	}
}

// countingSink is a store.Sink that counts what it is handed and keeps
// nothing, so long benchmarks do not grow.
type countingSink struct {
	deliveries, recipients atomic.Int64
}

func (c *countingSink) Deliver(d store.Delivery) {
	c.deliveries.Add(1)
	c.recipients.Add(int64(len(d.Recipients)))
}
func (c *countingSink) DeliverEphemeral(store.Ephemeral) {}
func (c *countingSink) EmployeeChanged(int64, bool)      {}
func (c *countingSink) Resync()                          {}
func (c *countingSink) State(store.StateChange)          {}

// Connected claims every recipient, so the store reads all of them, as an
// instance with everyone connected would.
func (c *countingSink) Connected(ids []int64) []int64 { return ids }

var _ store.Sink = (*countingSink)(nil)
