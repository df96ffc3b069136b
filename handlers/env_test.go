package handlers_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

const (
	testSecret = "test-secret-that-is-at-least-32-bytes-long!"
	origin     = "https://app.example.com"
	// wait is how long a test waits for something that should happen at once.
	wait = 5 * time.Second
)

// env is a whole Herald in-process, on a real socket and a real SQLite file.
// Employees 1..5 exist (user1..user5, user<i>@corp.example); user1 is an
// admin, and so a publisher.
type env struct {
	t     testing.TB
	URL   string
	Store *sqlite.DB
	Hub   *sse.Hub
	// Handler is the handler under test (Drain, Shutdown).
	Handler *handlers.Handler
	Secret  []byte
	dsn     string
}

// silentStore opens a second handle on the same database without a
// listener: what it publishes is stored but never delivered to streams, as
// when a delivery is lost or late.
func (e *env) silentStore() *sqlite.DB {
	e.t.Helper()
	st, err := sqlite.Open(context.Background(), e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// goroutineStreams runs the suite with every SSE stream on its net/http
// goroutine instead of parked (make test runs the package both ways).
var goroutineStreams = flag.Bool("goroutine-streams", false, "serve SSE streams on goroutines, not parked")

type envOptions struct {
	heartbeat time.Duration
	hubOpts   []sse.Option
	employees int
	// authConfig and handlerConfig, if set, adjust the configurations
	// before use (Azure, sessions, readiness: see azure_test.go).
	authConfig    func(*auth.Config)
	handlerConfig func(*handlers.Config)
}

func newEnv(t testing.TB, opts ...func(*envOptions)) *env {
	t.Helper()
	o := envOptions{heartbeat: 15 * time.Second, employees: 5}
	for _, f := range opts {
		f(&o)
	}
	path := "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	storetest.Seed(t, st, o.employees, 1)

	hub := sse.NewHub(append([]sse.Option{sse.WithHeartbeat(o.heartbeat), sse.WithGoroutines(*goroutineStreams),
		sse.WithSource(handlers.Source{Store: st})}, o.hubOpts...)...)
	acfg := auth.Config{
		Secret:         []byte(testSecret),
		PublisherRoles: []string{"Notifications.Publish", "service", "admin"},
		DirectoryRoles: []string{"Directory.Write", "admin"},
		Directory:      st,
	}
	if o.authConfig != nil {
		o.authConfig(&acfg)
	}
	a, err := auth.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	hcfg := handlers.Config{
		Store: st, Hub: hub, Auth: a, Origins: []string{origin},
		OpenAPI: openapi.YAML,
	}
	if o.handlerConfig != nil {
		o.handlerConfig(&hcfg)
	}
	h := handlers.New(hcfg)
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = st.Listen(ctx, handlers.NewFanout(hub, a, nil))
	}()
	// Every request a test makes, and every answer, is held to the API
	// document (see validating in openapi_test.go).
	srv := httptest.NewServer(validating(t.Errorf, h))
	t.Cleanup(func() {
		hub.Close() // ends streams, so the server can stop
		sctx, scancel := context.WithTimeout(context.Background(), wait)
		defer scancel()
		if err := h.Shutdown(sctx); err != nil {
			t.Errorf("handler shutdown: %v", err)
		}
		srv.Close()
		cancel()
		<-listening
	})
	waitReady(t, st)
	return &env{t: t, URL: srv.URL, Store: st, Hub: hub, Handler: h, Secret: []byte(testSecret), dsn: path}
}

// token mints an HS256 token for user with roles, valid for an hour.
func (e *env) token(user string, roles ...string) string {
	return e.tokenTTL(user, time.Hour, roles...)
}

func (e *env) tokenTTL(user string, ttl time.Duration, roles ...string) string {
	e.t.Helper()
	tok, err := auth.MintHS256(e.Secret, auth.TokenSpec{User: user, Roles: roles, TTL: ttl}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// admin is a publisher employee's token (user1).
func (e *env) admin() string { return e.token("user1") }

// service is an app token: a publisher role and no employee.
func (e *env) service() string { return e.token("billing-service", "service") }

// directory is an app token that may change the directory (and not publish).
func (e *env) directory() string { return e.token("hr-sync", "Directory.Write") }

func (e *env) do(method, path, token string, body any, header ...string) (int, http.Header, []byte) {
	e.t.Helper()
	return heraldtest.Do(e.t, method, e.URL+path, token, body, header...)
}

// publish posts a notification and returns status and body.
func (e *env) publish(body any, header ...string) (int, []byte) {
	e.t.Helper()
	status, _, out := e.do(http.MethodPost, "/notifications", e.service(), body, header...)
	return status, out
}

// mustPublish posts a notification to employees and fails unless it is 201.
func (e *env) mustPublish(title string, to ...int64) publishAnswer {
	e.t.Helper()
	status, out := e.publish(map[string]any{"to": map[string]any{"employees": to}, "type": "test.note", "title": title})
	if status != http.StatusCreated {
		e.t.Fatalf("publish %q: %d %s", title, status, out)
	}
	return heraldtest.DecodeJSON[publishAnswer](e.t, out)
}

type publishAnswer struct {
	ID         string `json:"id"`
	Recipients int    `json:"recipients"`
	Unknown    []any  `json:"unknown"`
}

// stream opens user's event stream (bearer token) with extra header pairs.
func (e *env) stream(user string, header ...string) *heraldtest.Stream {
	e.t.Helper()
	return heraldtest.MustOpenStream(e.t, e.URL+"/events", e.token(user), header...)
}

// seed publishes n notifications to employee straight through the store.
func (e *env) seed(employee int64, n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		_, err := e.Store.Publish(context.Background(), store.Message{
			To: store.Targets{Employees: []int64{employee}}, Type: "test.seed", Title: "seeded",
		}, nil)
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func problem(t testing.TB, body []byte) heraldtest.Problem {
	t.Helper()
	return heraldtest.DecodeJSON[heraldtest.Problem](t, body)
}

func decodeInto(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// waitReady waits until the store's listener is up (Ping succeeds).
func waitReady(t testing.TB, st store.Store) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for st.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready: %v", st.Ping(context.Background()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
