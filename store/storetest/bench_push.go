package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// BenchPush measures the Web Push queue on a store: 1,000 employees with a
// subscription each receive b.N broadcasts; "decide" times QueuePushes
// turning them into jobs (reported per job), "claim+settle" times
// claiming them 32 at a time and settling each batch, as a worker does. The
// publishes are outside the timers.
func BenchPush(b *testing.B, open BenchOpener) {
	const employees = 1_000
	bs := newBenchStore(b, open, employees)
	ctx := context.Background()
	for e := int64(1); e <= employees; e++ {
		if _, err := bs.st.SavePushSubscription(ctx, pushSub(e, fmt.Sprintf("https://push.example/%d", e), 1), 10); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("decide", func(b *testing.B) {
		b.StopTimer()
		for range b.N {
			if _, err := bs.st.Publish(ctx, benchMessage(store.Targets{All: true}), nil); err != nil {
				b.Fatal(err)
			}
		}
		rule := store.PushRule{Now: time.Now().Add(time.Minute), Delay: time.Second, TTL: 24 * time.Hour, Limit: 500}
		jobs := 0
		b.StartTimer()
		for {
			n, more, err := bs.st.QueuePushes(ctx, rule)
			if err != nil {
				b.Fatal(err)
			}
			jobs += n
			if !more {
				break
			}
		}
		b.StopTimer()
		if jobs != b.N*employees {
			b.Fatalf("queued %d jobs; want %d", jobs, b.N*employees)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(jobs), "ns/job")
	})
	b.Run("claim+settle", func(b *testing.B) {
		now := time.Now().Add(time.Hour)
		done := 0
		for b.Loop() {
			jobs, err := bs.st.ClaimPushes(ctx, now, time.Minute, 32)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) == 0 { // drained: queue more, untimed
				b.StopTimer()
				if _, err := bs.st.Publish(ctx, benchMessage(store.Targets{All: true}), nil); err != nil {
					b.Fatal(err)
				}
				if _, _, err := bs.st.QueuePushes(ctx, store.PushRule{Now: now, Delay: time.Second, TTL: 24 * time.Hour, Limit: employees}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				continue
			}
			outcomes := make([]store.PushOutcome, len(jobs))
			for i, j := range jobs {
				outcomes[i] = store.PushOutcome{Job: j.ID}
			}
			if err := bs.st.SettlePushes(ctx, outcomes); err != nil {
				b.Fatal(err)
			}
			done += len(jobs)
		}
		if done > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(done), "ns/job")
		}
	})
}
