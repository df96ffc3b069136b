package sse_test

import (
	"bytes"
	"testing"

	"github.com/corp/herald/sse"
)

// BenchmarkAppendEvent encodes one SSE event into a reused buffer.
func BenchmarkAppendEvent(b *testing.B) {
	multiline := bytes.Repeat([]byte("a line of a long message body\n"), 64) // 1.9 KiB, 64 data lines
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"notification", notificationData},
		{"multiline", multiline},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.data)))
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = sse.AppendEvent(buf[:0], "1234", "notification", tt.data)
			}
		})
	}
}

// BenchmarkEventSSE is an event's first encoding (done once per event, then
// shared by every stream that gets it) and its later, shared use.
func BenchmarkEventSSE(b *testing.B) {
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sse.NewEvent(1234, "notification", notificationData).SSE()
		}
	})
	b.Run("shared", func(b *testing.B) {
		ev := sse.NewEvent(1234, "notification", notificationData)
		ev.SSE()
		b.ReportAllocs()
		for b.Loop() {
			ev.SSE()
		}
	})
}

// BenchmarkEventJSON is the WebSocket frame's first encoding.
func BenchmarkEventJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sse.NewEvent(1234, "notification", notificationData).JSON()
	}
}

// notificationData is a typical notification as streams carry it (~230 bytes).
var notificationData = []byte(`{"id":"1234","type":"request.approved","title":"Your request was approved",` +
	`"body":"Vacation 2026-12-01 … 2026-12-05","data":{"request_id":481,"approver":"ana"},"created_at":"2026-11-21T23:42:32.019Z"}`)
