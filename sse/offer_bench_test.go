package sse

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The engine's own share of a delivery, without the kernel's: streams whose
// connection takes every write at once and keeps nothing (discardConn).
// hub_bench_test.go measures deliveries to real sockets.

type discardConn struct{}

func (discardConn) tryWrite([]byte) (bool, *End) { return true, nil }
func (discardConn) write([][]byte) *End          { return nil }
func (discardConn) schedule()                    {}
func (discardConn) abort()                       {}
func (discardConn) close([]byte)                 {}

func benchStreams(b *testing.B, h *Hub, n int, emp func(i int) int64) {
	b.Helper()
	for i := range n {
		s, err := h.open(context.Background(), Params{Employee: emp(i), ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{chunked: true})
		if err != nil {
			b.Fatal(err)
		}
		s.start(discardConn{})
	}
}

// BenchmarkOffer: one event to one employee's tabs, and one shared event to
// 10,000 employees, through the hub and each stream's state machine.
func BenchmarkOffer(b *testing.B) {
	data := []byte(`{"id":"1234","type":"request.approved","title":"Your request was approved","body":"Vacation","data":{},"created_at":"2026-11-21T23:42:32.019Z"}`)
	for _, n := range []int{1, DefaultMaxStreams} {
		b.Run(fmt.Sprintf("tabs=%d", n), func(b *testing.B) {
			h := testHub(b, WithMaxStreams(n))
			benchStreams(b, h, n, func(int) int64 { return 1 })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := h.Deliver(1, NewEvent(int64(i+1), "notification", data)); got != n {
					b.Fatalf("reached %d, want %d", got, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/stream")
		})
	}
	b.Run("broadcast/employees=10000", func(b *testing.B) {
		h := testHub(b)
		benchStreams(b, h, 10000, func(i int) int64 { return int64(i + 1) })
		ev := NewEvent(0, "notification", data)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h.DeliverTo(Targets{All: true}, ev)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/stream")
	})
}
