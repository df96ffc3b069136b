package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/oidctest"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

const testSecret = "auth-test-secret-at-least-32-bytes-long!"

// wait bounds what should happen at once (generous: CI shares 2 cores).
const wait = 10 * time.Second

// newClock is a test clock that moves only when told.
func newClock() *heraldtest.Clock { return heraldtest.NewClock() }

// openStore is a real SQLite store in a temp dir with employees user1..user5
// (user<i>@corp.example; user1 an admin).
func openStore(t testing.TB) *sqlite.DB {
	t.Helper()
	st, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	storetest.Seed(t, st, 5, 1)
	return st
}

// newAzure is a verifier for iss on the test clock (fast start-up retries),
// closed at the end of the test. It does not wait for the keys.
func newAzure(t testing.TB, iss *oidctest.Issuer, clk *heraldtest.Clock, opts ...func(*auth.AzureConfig)) *auth.Azure {
	t.Helper()
	cfg := auth.AzureConfig{
		Issuer:    iss.URL,
		Audiences: []string{oidctest.Audience, oidctest.ClientID},
		RetryMin:  10 * time.Millisecond,
		RetryMax:  50 * time.Millisecond,
		Now:       clk.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := auth.NewAzure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// loaded waits until a has its keys.
func loaded(t testing.TB, a *auth.Azure) {
	t.Helper()
	select {
	case <-a.Loaded():
	case <-time.After(wait):
		t.Fatal("azure keys not loaded")
	}
}

// newAuth is an Authenticator with the test secret and, when az is not nil,
// Azure, over dir.
func newAuth(t testing.TB, az *auth.Azure, dir auth.Directory, mutate ...func(*auth.Config)) *auth.Authenticator {
	t.Helper()
	cfg := auth.Config{
		Secret:         []byte(testSecret),
		PublisherRoles: []string{"Notifications.Publish", "service", "admin"},
		Directory:      dir,
	}
	if az != nil {
		cfg.External = az
	}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// request builds a request with header pairs.
func request(header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func bearer(tok string) *http.Request { return request("Authorization", "Bearer "+tok) }

// authError returns err as *auth.Error or fails.
func authError(t testing.TB, err error) *auth.Error {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return ae
}

// countingDirectory counts lookups that reach the real directory and can
// be made to fail as a store that is down does.
type countingDirectory struct {
	auth.Directory
	calls atomic.Int64
	down  atomic.Bool
}

func (d *countingDirectory) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	d.calls.Add(1)
	if d.down.Load() {
		return store.Employee{}, store.ErrUnavailable
	}
	return d.Directory.EmployeeByLogin(ctx, login)
}
