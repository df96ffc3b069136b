package webpush

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/corp/herald/store"
)

// markSink is the part of store.Push that Marks uses, recording.
type markSink struct {
	store.Push
	got  [][]store.Streamed
	fail bool
}

func (m *markSink) MarkStreamed(_ context.Context, marks []store.Streamed) error {
	if m.fail {
		return context.DeadlineExceeded
	}
	slices.SortFunc(marks, func(a, b store.Streamed) int { return int(a.Employee - b.Employee) })
	m.got = append(m.got, marks)
	return nil
}

func TestMarksMergeAndRetry(t *testing.T) {
	sink := &markSink{fail: true}
	m := NewMarks(sink, 0, nil)
	// Two tabs of employee 1 write 3..5 each; a later write 6; then 9.
	m.Written(1, 3, 3)
	m.Written(1, 3, 3)
	m.Written(1, 4, 5)
	m.Written(1, 4, 5)
	m.Written(1, 6, 6)
	m.Written(1, 9, 9)
	m.Written(2, 1, 1)
	if err := m.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the store's failure")
	}
	sink.fail = false
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []store.Streamed{{Employee: 1, From: 3, To: 6}, {Employee: 1, From: 9, To: 9}, {Employee: 2, From: 1, To: 1}}
	if len(sink.got) != 1 || !slices.Equal(sink.got[0], want) {
		t.Fatalf("flushed %v; want one flush of %v (kept across the failure)", sink.got, want)
	}
	if err := m.Flush(context.Background()); err != nil || len(sink.got) != 1 {
		t.Fatalf("an empty flush wrote %v, %v", sink.got, err)
	}
}

// BenchmarkMarksWritten is the cost a stream's write adds when Web Push is
// on: one call per write of stored events, from many streams at once.
func BenchmarkMarksWritten(b *testing.B) {
	m := NewMarks(&markSink{}, 0, nil)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		emp := next.Add(1)
		seq := int64(0)
		for pb.Next() {
			seq++
			m.Written(emp*1000+seq%1000, seq, seq)
		}
	})
}
