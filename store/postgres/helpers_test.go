package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/corp/herald/store"
)

// seedFast puts employees 1..n (user<i>, user<i>@corp.example, role
// "staff") with one statement, bypassing the directory API (and its change
// notifications) for large directories.
func seedFast(tb testing.TB, url string, n int) {
	tb.Helper()
	x, err := sqlx.Open("postgres", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer x.Close()
	_, err = x.Exec(`INSERT INTO employees (id, email, username, name, roles, created_at, updated_at)
		SELECT g, 'user' || g || '@corp.example', 'user' || g, 'User ' || g, '{staff}', now(), now()
		FROM generate_series(1, $1::bigint) g`, n)
	if err != nil {
		tb.Fatalf("seed %d employees: %v", n, err)
	}
}

// listen runs st.Listen(sink) until the test ends and waits until the
// store is ready (its listener subscribed).
func listen(tb testing.TB, st store.Store, sink store.Sink) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Listen(ctx, sink) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("Listen returned %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for st.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("store not ready after 10s: %v", st.Ping(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
