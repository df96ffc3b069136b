package sqlite_test

import (
	"context"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/storetest"
)

// BenchmarkPublish is the shared store benchmark (storetest.BenchPublish)
// on a SQLite file in a temp dir.
func BenchmarkPublish(b *testing.B) {
	storetest.BenchPublish(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}

// BenchmarkPush is the shared Web Push queue benchmark (storetest.BenchPush).
func BenchmarkPush(b *testing.B) {
	storetest.BenchPush(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}

// BenchmarkPublishEphemeral is an ephemeral message to one employee, with
// a stream here (the directory is not read) and without one.
func BenchmarkPublishEphemeral(b *testing.B) {
	db := MustOpen(b)
	storetest.Seed(b, db, 1000, 0)
	online := map[int64]bool{}
	for id := int64(1); id <= 500; id++ {
		online[id] = true
	}
	sink := &streamsSink{Recorder: storetest.NewRecorder(), online: online}
	listen(b, db, sink)
	for _, c := range []struct {
		name  string
		first int64
	}{{"online", 1}, {"offline", 501}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				m := store.Message{To: store.Targets{Employees: []int64{c.first + i%500}}, Type: "typing", Title: "t"}
				if _, err := db.PublishEphemeral(context.Background(), m, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
