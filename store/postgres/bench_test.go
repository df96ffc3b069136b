package postgres_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// latencySink records, per delivery, the time from publish to the listener
// handing it over (publish→sink; the hub and the socket add microseconds).
type latencySink struct {
	*storetest.Recorder
	mu    sync.Mutex
	sent  map[string]time.Time
	lat   []time.Duration
	count atomic.Int64
}

func (s *latencySink) Deliver(d store.Delivery) {
	at := time.Now()
	s.mu.Lock()
	if t0, ok := s.sent[d.Notification.Title]; ok {
		s.lat = append(s.lat, at.Sub(t0))
	}
	s.mu.Unlock()
	s.count.Add(1)
}

func (s *latencySink) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0
	}
	sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
	return s.lat[int(float64(len(s.lat)-1)*p)]
}

// BenchmarkPublish publishes persisted unicast notifications from 64
// parallel goroutines (32 × GOMAXPROCS on two cores) to 1,000 employees and
// reports publishes/s and the publish→listener latency percentiles.
//
//	TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench BenchmarkPublish -benchtime 10000x ./store/postgres
func BenchmarkPublish(b *testing.B) { benchPublish(b, false) }

// BenchmarkPublishIdempotent is BenchmarkPublish with an Idempotency-Key on
// every publish.
func BenchmarkPublishIdempotent(b *testing.B) { benchPublish(b, true) }

func benchPublish(b *testing.B, keyed bool) {
	url := pgtest.NewDatabase(b)
	db := mustOpenURL(b, url, postgres.WithMaxConns(32))
	seedFast(b, url, 1000)
	sink := &latencySink{Recorder: storetest.NewRecorder(), sent: make(map[string]time.Time, b.N)}
	listen(b, db, sink)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			title := fmt.Sprintf("b%d", i)
			sink.mu.Lock()
			sink.sent[title] = time.Now()
			sink.mu.Unlock()
			m := store.Message{To: store.Targets{Employees: []int64{i%1000 + 1}}, Type: "bench", Title: title}
			var idem *store.Idempotency
			if keyed {
				idem = &store.Idempotency{Owner: "bench", Key: title, Hash: "h"}
			}
			if _, err := db.Publish(context.Background(), m, idem); err != nil {
				b.Error(err)
				return
			}
		}
	})
	took := time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	for sink.count.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "publishes/s")
	b.ReportMetric(float64(sink.percentile(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(sink.percentile(0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkPublishPaced publishes persisted unicast notifications at a
// steady 1,000/s (each from its own goroutine, as HTTP requests arrive) and
// reports the publish→listener latency percentiles. b.N is the number of
// publishes: -benchtime 5000x runs five seconds.
func BenchmarkPublishPaced(b *testing.B) {
	const rate = 1000
	url := pgtest.NewDatabase(b)
	db := mustOpenURL(b, url, postgres.WithMaxConns(32))
	seedFast(b, url, 1000)
	sink := &latencySink{Recorder: storetest.NewRecorder(), sent: make(map[string]time.Time, b.N)}
	listen(b, db, sink)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			title := fmt.Sprintf("p%d", i)
			sink.mu.Lock()
			sink.sent[title] = time.Now()
			sink.mu.Unlock()
			m := store.Message{To: store.Targets{Employees: []int64{int64(i%1000 + 1)}}, Type: "bench", Title: title}
			if _, err := db.Publish(context.Background(), m, nil); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for sink.count.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
	b.ReportMetric(float64(sink.percentile(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(sink.percentile(0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkPush is the shared Web Push queue benchmark (storetest.BenchPush).
func BenchmarkPush(b *testing.B) {
	pgtest.ServerURL(b)
	storetest.BenchPush(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}

// BenchmarkCenter is the shared notification-center benchmark
// (storetest.BenchCenter) on a fresh database.
func BenchmarkCenter(b *testing.B) {
	storetest.BenchCenter(b, func(tb testing.TB) store.Store { return MustOpen(tb, postgres.WithMaxConns(32)) })
}
