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

// BenchmarkPush is the shared Web Push queue benchmark (storetest.BenchPush).
func BenchmarkPush(b *testing.B) {
	storetest.BenchPush(b, func(tb testing.TB) store.Store { return MustOpen(tb) })
}
