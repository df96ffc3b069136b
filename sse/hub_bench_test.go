package sse_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/corp/herald/sse"
)

// The delivery benchmarks write to real streams: HTTP/1.1 SSE connections
// over loopback, taken over by the poller, each drained by a client
// goroutine. What they time is the delivering goroutine's work: the hub
// lookup and one non-blocking write per stream of the event's shared bytes.

// openDrained opens n SSE streams, stream i for employee emp(i), each read
// and discarded by a goroutine of its own until the benchmark ends.
func openDrained(b *testing.B, s *server, n int, emp func(i int) int) {
	b.Helper()
	for i := range n {
		conn, err := net.Dial("tcp", s.addr())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /events?emp=%d HTTP/1.1\r\nHost: x\r\n\r\n", emp(i))
		go io.Copy(io.Discard, bufio.NewReaderSize(conn, 64<<10))
	}
	s.waitStreams(b, n)
}

// deliverLoop runs deliver b.N times and reports the cost per stream.
// deliver(k) delivers the k-th event (seq k+1).
func deliverLoop(b *testing.B, streams int, deliver func(k int) int) {
	const warm = 100 // warm the sockets' buffers
	for k := range warm {
		deliver(k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := deliver(warm + i); got != streams {
			b.Fatalf("delivery %d reached %d streams, want %d", i, got, streams)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(streams), "ns/stream")
}

// BenchmarkDeliver is one event to one employee's streams (browser tabs: 1,
// or the limit of 10), the path of every persisted unicast delivery.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1, sse.DefaultMaxStreams} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			s := newServer(b)
			openDrained(b, s, n, func(int) int { return 1 })
			deliverLoop(b, n, func(i int) int {
				return s.hub.Deliver(1, sse.NewEvent(int64(i+1), "notification", notificationData))
			})
		})
	}
}

// BenchmarkBroadcast reaches 5,000 connected employees (each stream is a
// socket pair in this process, under its open-file limit). "shared" is an
// ephemeral broadcast, one event for all; "per-recipient" is a persisted
// one: each recipient has its own seq and so its own event, as the store's
// delivery hands them over.
func BenchmarkBroadcast(b *testing.B) {
	const employees = 5000
	b.Run(fmt.Sprintf("shared/employees=%d", employees), func(b *testing.B) {
		s := newServer(b)
		openDrained(b, s, employees, func(i int) int { return i + 1 })
		ev := sse.NewEvent(0, "notification", notificationData)
		deliverLoop(b, employees, func(int) int { return s.hub.DeliverTo(sse.Targets{All: true}, ev) })
	})
	b.Run(fmt.Sprintf("per-recipient/employees=%d", employees), func(b *testing.B) {
		s := newServer(b)
		openDrained(b, s, employees, func(i int) int { return i + 1 })
		tail := notificationData[len(`{"id":"1234",`):]
		deliverLoop(b, employees, func(i int) int {
			seq := int64(i + 1)
			n := 0
			for emp := int64(1); emp <= employees; emp++ {
				n += s.hub.DeliverFunc(emp, func() *sse.Event {
					data := make([]byte, 0, len(tail)+32)
					data = append(data, `{"id":"`...)
					data = strconv.AppendInt(data, seq, 10)
					data = append(data, `",`...)
					data = append(data, tail...)
					return sse.NewEvent(seq, "notification", data)
				})
			}
			return n
		})
	})
}
