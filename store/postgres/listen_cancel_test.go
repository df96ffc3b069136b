package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestListenCancelledWhileUnreachable: a Listen whose context ends while
// it is still waiting for its first connection (the database cannot be
// reached, so LISTEN never gets in place) returns nil, as a Listen ended
// by its context does.
func TestListenCancelledWhileUnreachable(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	proxy, viaProxy := proxied(t, u)
	a := mustOpenURL(t, viaProxy)
	proxy.Cut()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Listen(ctx, storetest.NewRecorder()) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Listen cancelled before it could connect returned %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen still running 10s after its context ended")
	}
}
