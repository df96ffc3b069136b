package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// MustOpen opens a store on a fresh database and closes it at cleanup. The
// database is a copy of one migrated once per test process (Open finds
// nothing to apply); the tests of migrating an empty database use
// pgtest.NewDatabase.
func MustOpen(tb testing.TB, opts ...postgres.Option) *postgres.DB {
	tb.Helper()
	return mustOpenURL(tb, pgtest.NewPreparedDatabase(tb, "migrated", migrate), opts...)
}

// migrate applies the migrations to the database at url and closes every
// connection it opened.
func migrate(ctx context.Context, url string) error {
	db, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	return db.Close()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.DropTemplates(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
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
