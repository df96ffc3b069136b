package sqlite_test

import (
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/storetest"
)

// BenchmarkPublish is the shared store benchmark (storetest.BenchPublish)
// on a SQLite file in a temp dir.
func BenchmarkPublish(b *testing.B) {
	storetest.BenchPublish(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}

// BenchmarkCenter is the shared notification-center benchmark
// (storetest.BenchCenter) on a SQLite file in a temp dir.
func BenchmarkCenter(b *testing.B) {
	storetest.BenchCenter(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}
