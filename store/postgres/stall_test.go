package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestStalledServerBoundsEveryCall: a PostgreSQL that accepts TCP but never
// answers (issue 14, row 1: a publish answered after 61 s, because lib/pq
// waits for the server to answer its cancel request). Every call returns
// ErrUnavailable within the call timeout, or sooner when its context ends;
// a publish whose statement was sent says that its outcome is unknown. Once
// the network flows again the store works again by itself.
func TestStalledServerBoundsEveryCall(t *testing.T) {
	const bound = time.Second
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	db := mustOpenURL(t, viaProxy, postgres.WithCallTimeout(bound),
		postgres.WithListenerPing(100*time.Millisecond, 300*time.Millisecond))
	storetest.Seed(t, db, 2, 0)
	storetest.NewHarness(t, db)
	ctx := context.Background()
	m := store.Message{To: store.Targets{Employees: []int64{1, 2}}, Type: "t", Title: "stalled"}
	if _, err := db.Publish(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	// Warm the pool with several connections, so the publish below finds
	// an idle one (and sends its statement) even when the listener's or
	// the housekeeping's work holds another at that moment: without a
	// pooled connection it would dial, fail before sending anything, and
	// rightly say that nothing was written.
	var warm sync.WaitGroup
	for range 4 {
		warm.Go(func() {
			if _, err := db.Inbox(ctx, store.InboxQuery{Employee: 1, Limit: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	warm.Wait()

	proxy.Stall()
	t.Cleanup(proxy.Restore) // before the proxy closes, so cleanups do not hang
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	calls := []struct {
		name  string
		limit time.Duration
		call  func() error
		// unknown: the write was sent, so its outcome cannot be known.
		unknown bool
	}{
		{"Publish", bound, func() error { _, err := db.Publish(ctx, m, nil); return err }, true},
		{"Publish with Idempotency-Key", bound, func() error {
			_, err := db.Publish(ctx, m, &store.Idempotency{Owner: "o", Key: "k", Hash: "h"})
			return err
		}, false}, // stalled before its commit: nothing was written
		{"PublishEphemeral", bound, func() error { _, err := db.PublishEphemeral(ctx, m, nil); return err }, false},
		{"EmployeeByLogin", bound, func() error { _, err := db.EmployeeByLogin(ctx, "user1"); return err }, false},
		{"PutEmployee", bound, func() error {
			_, _, err := db.PutEmployee(ctx, store.Employee{ID: 9, Username: "nine"})
			return err
		}, false},
		{"Inbox", bound, func() error { _, err := db.Inbox(ctx, store.InboxQuery{Employee: 1, Limit: 10}); return err }, false},
		{"Ping, 200 ms context", 200 * time.Millisecond, func() error { return db.Ping(short) }, false},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a stalled server: %v, want ErrUnavailable", c.name, err)
		}
		if c.unknown != errors.Is(err, store.ErrOutcomeUnknown) {
			t.Errorf("%s: outcome unknown = %v (%v), want %v", c.name, !c.unknown, err, c.unknown)
		}
		// The slack covers the race detector on a busy machine.
		if took > c.limit+time.Second {
			t.Errorf("%s on a stalled server took %v, want about %v", c.name, took.Round(time.Millisecond), c.limit)
		}
	}

	proxy.Restore()
	eventually(t, "the store working again", func() bool { return db.Ping(ctx) == nil })
	if _, err := db.Publish(ctx, m, nil); err != nil {
		t.Fatalf("publish after the stall: %v", err)
	}
}

// TestRestartedServerIsNoDoubt: connections PostgreSQL closed while they
// sat in the pool (a restart) are found dead before a statement is sent on
// them, so the publishes after the restart succeed instead of failing with
// an outcome in doubt.
func TestRestartedServerIsNoDoubt(t *testing.T) {
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	db := mustOpenURL(t, viaProxy)
	storetest.Seed(t, db, 2, 0)
	ctx := context.Background()
	m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "x"}
	if _, err := db.Publish(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // closes the pooled connections, as a restart does
	proxy.Restore()
	time.Sleep(50 * time.Millisecond) // the FINs arrive
	for i := range 3 {
		if _, err := db.Publish(ctx, m, nil); err != nil {
			t.Fatalf("publish %d after the restart: %v", i, err)
		}
	}
}

// TestUnreachableAtStart: with WithRetryStart, Open succeeds while
// PostgreSQL cannot be reached (issue 14, row 13: Herald exited instead),
// every call answers ErrUnavailable, and once the server is reachable the
// store migrates and works by itself. Without the option, and for errors
// retrying cannot fix, Open fails.
func TestUnreachableAtStart(t *testing.T) {
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	proxy.Cut()
	ctx := context.Background()
	if db, err := postgres.Open(ctx, viaProxy); err == nil {
		db.Close()
		t.Fatal("Open without WithRetryStart succeeded on an unreachable server")
	}
	start := time.Now()
	db := mustOpenURL(t, viaProxy, postgres.WithRetryStart())
	if took := time.Since(start); took > 7*time.Second {
		t.Errorf("Open took %v on an unreachable server", took)
	}
	if err := db.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping before the server is reachable: %v, want ErrUnavailable", err)
	}
	if _, err := db.EmployeeByLogin(ctx, "user1"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("EmployeeByLogin before the server is reachable: %v, want ErrUnavailable", err)
	}
	m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "x"}
	if _, err := db.Publish(ctx, m, nil); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Publish before the server is reachable: %v, want ErrUnavailable (nothing written)", err)
	}
	proxy.Restore()
	storetest.NewHarness(t, db) // waits until it is ready: migrated and listening
	storetest.Seed(t, db, 1, 0)
	if _, err := db.Publish(ctx, m, nil); err != nil {
		t.Fatalf("publish once the server is reachable: %v", err)
	}

	bad := *mustParse(t, u)
	bad.Path = "/no_such_database_herald"
	if db, err := postgres.Open(ctx, bad.String(), postgres.WithRetryStart()); err == nil {
		db.Close()
		t.Fatal("Open with WithRetryStart succeeded on a database that does not exist")
	}
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu
}
