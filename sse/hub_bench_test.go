package sse_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/corp/herald/sse"
)

// notificationData is a typical notification as streams carry it (~230 bytes).
var notificationData = []byte(`{"id":"1234","type":"request.approved","title":"Your request was approved",` +
	`"body":"Vacation 2026-12-01 … 2026-12-05","data":{"request_id":481,"approver":"ana"},"created_at":"2026-11-21T23:42:32.019Z"}`)

// drainEvery keeps queues below DefaultQueueSize: the hub would end a stream
// whose queue fills, and the benchmark measures publishing, not draining.
const drainEvery = sse.DefaultQueueSize / 2

func subscribeN(b *testing.B, hub *sse.Hub, n int, employee func(i int) int64, roles []string) []*sse.Subscription {
	b.Helper()
	subs := make([]*sse.Subscription, n)
	for i := range subs {
		s, err := hub.Subscribe(employee(i), roles)
		if err != nil {
			b.Fatalf("subscribe %d: %v", i, err)
		}
		subs[i] = s
	}
	b.Cleanup(func() {
		for _, s := range subs {
			s.Close()
		}
	})
	return subs
}

// publishLoop runs publish b.N times, draining the queues off the clock,
// and reports the cost per stream reached. Two rounds of warm-up first let
// every queue (and its spare) reach its working size, as on a server that
// has run for a while.
func publishLoop(b *testing.B, subs []*sse.Subscription, publish func(i int) int) {
	for range 2 { // a subscription alternates between two queue arrays
		for range drainEvery {
			publish(0)
		}
		for _, s := range subs {
			s.Take()
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := publish(i); got != len(subs) {
			b.Fatalf("publish reached %d streams, want %d", got, len(subs))
		}
		if i%drainEvery == drainEvery-1 {
			b.StopTimer()
			for _, s := range subs {
				s.Take()
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(subs)), "ns/stream")
}

// BenchmarkHubPublish is one event to one employee's streams (browser tabs:
// 1, or the limit of 10), the path of every persisted unicast delivery.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, sse.DefaultMaxStreams} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			hub := sse.NewHub()
			subs := subscribeN(b, hub, n, func(int) int64 { return 1 }, nil)
			ev := sse.NewEvent(1, "notification", notificationData)
			publishLoop(b, subs, func(int) int { return hub.Publish(1, ev) })
		})
	}
}

// BenchmarkHubFanout is one event to the streams of a room (a role): 1, 10
// and 1,000 streams, each of its own employee, as an ephemeral role message
// reaches them.
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			hub := sse.NewHub()
			subs := subscribeN(b, hub, n, func(i int) int64 { return int64(i + 1) }, []string{"staff"})
			ev := sse.NewEvent(0, "notification", notificationData)
			t := sse.Targets{Roles: []string{"staff"}}
			publishLoop(b, subs, func(int) int { return hub.PublishTo(t, ev) })
		})
	}
}

// BenchmarkHubBroadcast reaches 10,000 connected employees. "shared" is an
// ephemeral broadcast: one event for all. "per-recipient" is a persisted
// one: each recipient has its own seq, so each gets its own event (its id
// prepended to the shared tail), as the store's delivery hands them over.
func BenchmarkHubBroadcast(b *testing.B) {
	const employees = 10_000
	b.Run(fmt.Sprintf("shared/employees=%d", employees), func(b *testing.B) {
		hub := sse.NewHub()
		subs := subscribeN(b, hub, employees, func(i int) int64 { return int64(i + 1) }, nil)
		ev := sse.NewEvent(0, "notification", notificationData)
		publishLoop(b, subs, func(int) int { return hub.PublishTo(sse.Targets{All: true}, ev) })
	})
	b.Run(fmt.Sprintf("per-recipient/employees=%d", employees), func(b *testing.B) {
		hub := sse.NewHub()
		subs := subscribeN(b, hub, employees, func(i int) int64 { return int64(i + 1) }, nil)
		tail := notificationData[len(`{"id":"1234",`):]
		publishLoop(b, subs, func(i int) int {
			n := 0
			for emp := int64(1); emp <= employees; emp++ {
				seq := int64(i + 1)
				data := make([]byte, 0, len(tail)+32)
				data = append(data, `{"id":"`...)
				data = strconv.AppendInt(data, seq, 10)
				data = append(data, `",`...)
				data = append(data, tail...)
				n += hub.Publish(emp, sse.NewEvent(seq, "notification", data))
			}
			return n
		})
	})
}
