package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/store"
)

// TestLoginCacheStorm: many callers for N employees at once cost about N
// directory queries, not one per caller; after the TTL, one more each.
func TestLoginCacheStorm(t *testing.T) {
	dir := &countingDirectory{Directory: openStore(t)}
	clk := newClock()
	a := newAuth(t, nil, dir, func(c *auth.Config) { c.Now = clk.Now })
	const employees, perEmployee = 5, 100
	tokens := make([]string, employees)
	for i := range tokens {
		tokens[i], _ = auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: fmt.Sprintf("User%d@corp.example", i+1), TTL: time.Hour}, time.Now())
	}
	storm := func() {
		t.Helper()
		var wg sync.WaitGroup
		for i := range employees * perEmployee {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := a.Authenticate(bearer(tokens[i%employees]))
				if err != nil || id.Employee.ID != int64(i%employees+1) {
					t.Errorf("caller %d: %+v %v", i, id, err)
				}
			}()
		}
		wg.Wait()
	}
	storm()
	// Singleflight shares a query among concurrent callers, and a caller
	// that missed the cache just before the entry landed finds it inside
	// its own flight: one query per employee, however the callers are
	// scheduled.
	if n := dir.calls.Load(); n != employees {
		t.Fatalf("%d callers for %d employees made %d directory queries, want %d", employees*perEmployee, employees, n, employees)
	}
	before := dir.calls.Load()
	storm() // a reconnect within the TTL: all from the cache
	if n := dir.calls.Load() - before; n != 0 {
		t.Fatalf("a reconnect within the TTL made %d queries", n)
	}
	clk.Advance(31 * time.Second)
	before = dir.calls.Load()
	storm()
	if n := dir.calls.Load() - before; n != employees {
		t.Fatalf("after the TTL: %d queries, want %d", n, employees)
	}
}

// TestLoginCacheNegativeAndPurge: "not found" is remembered for 5 s;
// Forget (a directory change) drops everything.
func TestLoginCacheNegativeAndPurge(t *testing.T) {
	dir := &countingDirectory{Directory: openStore(t)}
	clk := newClock()
	a := newAuth(t, nil, dir, func(c *auth.Config) { c.Now = clk.Now })
	ghost, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "ghost", TTL: time.Hour}, time.Now())
	for range 20 {
		_, err := a.Authenticate(bearer(ghost))
		if ae := authError(t, err); ae.Code != "unknown_employee" {
			t.Fatalf("ghost: %v", err)
		}
	}
	if n := dir.calls.Load(); n != 1 {
		t.Fatalf("20 lookups of an unknown login made %d queries, want 1", n)
	}
	clk.Advance(6 * time.Second)
	_, _ = a.Authenticate(bearer(ghost))
	if n := dir.calls.Load(); n != 2 {
		t.Fatalf("after the negative TTL: %d queries, want 2", n)
	}
	a.Forget()
	_, _ = a.Authenticate(bearer(ghost))
	if n := dir.calls.Load(); n != 3 {
		t.Fatalf("after Forget: %d queries, want 3", n)
	}
}

// TestLoginCacheServesStaleWhileStoreDown: a known employee keeps
// resolving while the directory fails, for up to 10 minutes past the
// entry's expiry; unknown logins get the store's error.
func TestLoginCacheServesStaleWhileStoreDown(t *testing.T) {
	dir := &countingDirectory{Directory: openStore(t)}
	clk := newClock()
	a := newAuth(t, nil, dir, func(c *auth.Config) { c.Now = clk.Now })
	tok, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user2", TTL: time.Hour}, time.Now())
	if _, err := a.Authenticate(bearer(tok)); err != nil {
		t.Fatal(err)
	}
	dir.down.Store(true)
	clk.Advance(31 * time.Second) // expired: the directory is asked, fails
	before := dir.calls.Load()
	if id, err := a.Authenticate(bearer(tok)); err != nil || id.Employee.ID != 2 {
		t.Fatalf("stale entry while the store is down: %+v %v", id, err)
	}
	if dir.calls.Load() == before {
		t.Fatal("an expired entry was served without asking the directory")
	}
	other, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user3", TTL: time.Hour}, time.Now())
	if _, err := a.Authenticate(bearer(other)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("uncached login while the store is down: %v, want ErrUnavailable", err)
	}
	clk.Advance(10 * time.Minute)
	if _, err := a.Authenticate(bearer(tok)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("entry too stale: %v, want ErrUnavailable", err)
	}
	dir.down.Store(false)
	if id, err := a.Authenticate(bearer(tok)); err != nil || id.Employee.ID != 2 {
		t.Fatalf("store back: %+v %v", id, err)
	}
}

// gatedDirectory holds every lookup until released, honouring the lookup's
// context as a store does.
type gatedDirectory struct {
	auth.Directory
	started chan struct{}
	release chan struct{}
}

func (d *gatedDirectory) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	d.started <- struct{}{}
	select {
	case <-d.release:
	case <-ctx.Done():
		return store.Employee{}, ctx.Err()
	}
	return d.Directory.EmployeeByLogin(ctx, login)
}

// TestLoginCacheFirstCallerLeaves: the lookup that concurrent callers share
// does not run on the first caller's request (issue 14, row 11: when that
// client disconnected, everyone waiting on the same lookup got
// context.Canceled and a 500).
func TestLoginCacheFirstCallerLeaves(t *testing.T) {
	dir := &gatedDirectory{Directory: openStore(t), started: make(chan struct{}, 1), release: make(chan struct{})}
	a := newAuth(t, nil, dir)
	tok, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user2", TTL: time.Hour}, time.Now())
	first, leave := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(bearer(tok).WithContext(first))
		firstDone <- err
	}()
	<-dir.started // the shared lookup runs
	second := make(chan error, 1)
	go func() {
		id, err := a.Authenticate(bearer(tok))
		if err == nil && id.Employee.ID != 2 {
			err = fmt.Errorf("resolved to %+v", id.Employee)
		}
		second <- err
	}()
	time.Sleep(50 * time.Millisecond) // the second caller joins the lookup
	leave()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled (it left)", err)
	}
	close(dir.release)
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second caller, after the first left: %v; want employee 2", err)
		}
	case <-time.After(wait):
		t.Fatal("second caller got no answer")
	}
}
