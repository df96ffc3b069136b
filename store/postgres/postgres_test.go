package postgres_test

import (
	"context"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// MustOpen opens a store on a fresh database and closes it at cleanup.
func MustOpen(tb testing.TB, opts ...postgres.Option) *postgres.DB {
	tb.Helper()
	return mustOpenURL(tb, pgtest.NewDatabase(tb), opts...)
}

func mustOpenURL(tb testing.TB, url string, opts ...postgres.Option) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	pgtest.ServerURL(t) // skip (or fail under CI) once, not per subtest
	storetest.Run(t, func(t *testing.T) store.Store { return MustOpen(t) })
}
