package handlers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/oidctest"
	"github.com/corp/herald/store"
)

// azureEnv is env with Azure AD enabled: an in-test issuer (real RSA and EC
// keys over HTTP), the verifier on a test clock, /readyz waiting for its
// keys. JWT_SECRET stays set unless noSecret.
type azureEnv struct {
	*env
	iss *oidctest.Issuer
	az  *auth.Azure
	clk *heraldtest.Clock
}

type azureOptions struct {
	noSecret   bool          // Azure only: sessions use a per-process key
	down       bool          // the issuer is unreachable at start
	insecure   bool          // --dev cookies
	sessionTTL time.Duration // auth.Config.SessionTTL
	dir        func(auth.Directory) auth.Directory
}

func newAzureEnv(t *testing.T, opts ...func(*azureOptions)) *azureEnv {
	t.Helper()
	var o azureOptions
	for _, f := range opts {
		f(&o)
	}
	iss := oidctest.New(t)
	iss.SetDown(o.down)
	clk := heraldtest.NewClock() // the Azure verifier's kid refresh limit runs on it
	az, err := auth.NewAzure(auth.AzureConfig{
		Issuer: iss.URL, Audiences: []string{oidctest.Audience, oidctest.ClientID},
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(az.Close)
	e := newEnv(t, func(eo *envOptions) {
		eo.authConfig = func(c *auth.Config) {
			c.External = az
			c.SessionTTL = o.sessionTTL
			if o.noSecret {
				c.Secret = nil
			}
			if o.dir != nil {
				c.Directory = o.dir(c.Directory)
			}
		}
		eo.handlerConfig = func(c *handlers.Config) {
			c.Ready = az.Ready
			c.InsecureCookie = o.insecure
		}
	})
	if !o.down {
		select {
		case <-az.Loaded():
		case <-time.After(wait):
			t.Fatal("azure keys not loaded")
		}
	}
	return &azureEnv{env: e, iss: iss, az: az, clk: clk}
}

// user is a v2 user token for login signed with the RSA key.
func (e *azureEnv) user(login string, roles ...string) string {
	e.t.Helper()
	return oidctest.Sign(e.t, e.iss.RSA, e.iss.User(login, roles...))
}

// app is an app-only token of appID.
func (e *azureEnv) app(appID string, roles ...string) string {
	e.t.Helper()
	return oidctest.Sign(e.t, e.iss.EC, e.iss.App(appID, roles...))
}

// labelInboxes stores "for <id>" in each employee's inbox, so an inbox
// answer shows whose it is.
func (e *azureEnv) labelInboxes() {
	e.t.Helper()
	for i := int64(1); i <= 5; i++ {
		if _, err := e.Store.Publish(context.Background(), store.Message{
			To: store.Targets{Employees: []int64{i}}, Type: "test.label", Title: fmt.Sprintf("for %d", i),
		}, nil); err != nil {
			e.t.Fatal(err)
		}
	}
}

func rsaPEM(t *testing.T, k *oidctest.Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestAzureTokensHTTP: each kind of Azure token, on the inbox and on the
// stream, gets its status, problem code and WWW-Authenticate; accepted ones
// are the right employee.
func TestAzureTokensHTTP(t *testing.T) {
	e := newAzureEnv(t)
	e.labelInboxes()
	now := time.Now()
	claims := e.iss.User("User2@Corp.Example")
	valid := oidctest.Sign(t, e.iss.RSA, claims)
	parts := strings.Split(valid, ".")
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	other := e.user("user3@corp.example")
	tests := []struct {
		name     string
		header   []string
		status   int
		code     string
		employee int
	}{
		{"valid v2", []string{"Authorization", "Bearer " + valid}, 200, "", 2},
		{"valid v2, EC key", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.EC, claims)}, 200, "", 2},
		{"valid v1", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, e.iss.V1User("user4@corp.example"))}, 200, "", 4},
		{"preferred_username only", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(claims, "upn", nil, "email", nil))}, 200, "", 2},
		{"several cookies, odd spacing", []string{"Cookie", "theme=dark ;   token=" + valid + " ;x=1"}, 200, "", 2},
		{"header and cookie disagree: header wins", []string{"Authorization", "Bearer " + other, "Cookie", "token=" + valid}, 200, "", 3},
		{"wrong aud", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(claims, "aud", "api://someone-else"))}, 401, "invalid_token", 0},
		{"wrong iss", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(claims, "iss", "https://login.microsoftonline.com/another-tenant/v2.0"))}, 401, "invalid_token", 0},
		{"expired", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(claims, "exp", now.Add(-2*time.Minute).Unix()))}, 401, "token_expired", 0},
		{"nbf in the future", []string{"Authorization", "Bearer " + oidctest.Sign(t, e.iss.RSA, oidctest.With(claims, "nbf", now.Add(5*time.Minute).Unix()))}, 401, "invalid_token", 0},
		{"alg none", []string{"Authorization", "Bearer " + b64(`{"alg":"none","kid":"rsa-1"}`) + "." + b64(`{"iss":"`+e.iss.URL+`","aud":"`+oidctest.ClientID+`","preferred_username":"user2@corp.example","exp":`+exp+`}`) + "."}, 401, "invalid_token", 0},
		{"HS256 signed with the RSA public key", []string{"Authorization", "Bearer " + oidctest.SignAs(t, jwa.HS256, rsaPEM(t, e.iss.RSA), "rsa-1", claims)}, 401, "invalid_token", 0},
		{"unknown kid", []string{"Authorization", "Bearer " + oidctest.SignAs(t, jwa.RS256, e.iss.RSA.Private, "no-such-kid", claims)}, 401, "invalid_token", 0},
		{"missing kid", []string{"Authorization", "Bearer " + oidctest.SignAs(t, jwa.RS256, e.iss.RSA.Private, "", claims)}, 401, "invalid_token", 0},
		{"tampered payload", []string{"Authorization", "Bearer " + parts[0] + "." + b64(`{"iss":"`+e.iss.URL+`","aud":"`+oidctest.ClientID+`","preferred_username":"user1@corp.example","exp":`+exp+`}`) + "." + parts[2]}, 401, "invalid_token", 0},
		{"truncated", []string{"Authorization", "Bearer " + valid[:len(valid)/2]}, 401, "invalid_token", 0},
		{"100 KiB token", []string{"Authorization", "Bearer " + parts[0] + "." + strings.Repeat("x", 100<<10) + "." + parts[2]}, 401, "invalid_token", 0},
		{"bad base64", []string{"Authorization", "Bearer " + parts[0] + ".!!!." + parts[2]}, 401, "invalid_token", 0},
		{"unknown user", []string{"Authorization", "Bearer " + e.user("nobody@corp.example")}, 403, "unknown_employee", 0},
	}
	for _, tt := range tests {
		for _, path := range []string{"/notifications", "/events"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				if tt.status == 200 {
					expectCaller(t, e, path, tt.employee, tt.header...)
					return
				}
				s, resp, body := heraldtest.OpenStream(t, e.URL+path, "", tt.header...)
				if s != nil {
					t.Fatalf("accepted (200), want %d %s", tt.status, tt.code)
				}
				p := problem(t, body)
				if resp.StatusCode != tt.status || p.Code != tt.code {
					t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
				}
				wa := resp.Header.Get("WWW-Authenticate")
				if tt.status == 401 && !strings.HasPrefix(wa, `Bearer error="invalid_token", error_description="`) {
					t.Fatalf("WWW-Authenticate = %q", wa)
				}
				if tt.status != 401 && wa != "" {
					t.Fatalf("WWW-Authenticate on a %d: %q", tt.status, wa)
				}
			})
		}
	}
}

// expectCaller checks that a request with header is employee's: their
// inbox (labelled by labelInboxes), or their stream.
func expectCaller(t *testing.T, e *azureEnv, path string, employee int, header ...string) {
	t.Helper()
	if path == "/notifications" {
		status, _, body := heraldtest.Do(t, http.MethodGet, e.URL+path, "", nil, header...)
		if status != 200 || !strings.Contains(string(body), fmt.Sprintf(`"title":"for %d"`, employee)) {
			t.Fatalf("inbox: %d %s, want employee %d's", status, body, employee)
		}
		return
	}
	s, resp, body := heraldtest.OpenStream(t, e.URL+path, "", header...)
	if s == nil {
		t.Fatalf("stream refused: %d %s", resp.StatusCode, body)
	}
	defer s.Close()
	e.mustPublish(fmt.Sprintf("hello %d", employee), int64(employee))
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != fmt.Sprintf("hello %d", employee) {
		t.Fatalf("stream got %q, want employee %d's", heraldtest.Title(t, m), employee)
	}
}

// TestAzureKidRotationHTTP: an unknown kid is a 401 and one key fetch; a
// flood of them makes no more; after the rotation and the 30 s limit the
// new key works.
func TestAzureKidRotationHTTP(t *testing.T) {
	e := newAzureEnv(t)
	fetches := e.iss.JWKSFetches()
	next := oidctest.NewKey(t, "rsa-2", jwa.RS256)
	tok := oidctest.Sign(t, next, e.iss.User("user2@corp.example"))
	get := func(tok string) (int, string) {
		status, _, body := e.do(http.MethodGet, "/notifications", tok, nil)
		if status == 200 {
			return status, ""
		}
		return status, problem(t, body).Code
	}
	if status, code := get(tok); status != 401 || code != "invalid_token" {
		t.Fatalf("unknown kid: %d %s", status, code)
	}
	for i := range 30 {
		get(oidctest.SignAs(t, jwa.RS256, next.Private, "made-up-"+strconv.Itoa(i), e.iss.User("user2@corp.example")))
	}
	if n := e.iss.JWKSFetches() - fetches; n != 1 {
		t.Fatalf("31 unknown kids made %d key fetches, want 1", n)
	}
	e.iss.Publish(e.iss.RSA, next)
	if status, _ := get(tok); status != 401 {
		t.Fatalf("refreshed within the limit: %d", status)
	}
	e.clk.Advance(auth.DefaultKidRefresh)
	if status, code := get(tok); status != 200 {
		t.Fatalf("the rotated key after the limit: %d %s", status, code)
	}
	if n := e.iss.JWKSFetches() - fetches; n != 2 {
		t.Fatalf("%d key fetches, want 2", n)
	}
}

// TestAzureAppTokens: an app-only token with the publisher role publishes
// (its idempotency keys are its own), opens no stream and gets no session;
// without the role it may not publish.
func TestAzureAppTokens(t *testing.T) {
	e := newAzureEnv(t)
	s := heraldtest.MustOpenStream(t, e.URL+"/events", e.user("user2@corp.example"))
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "app.note", "title": "from the app"}
	billing := e.app("billing-app-id", "Notifications.Publish")
	status, _, out := e.do(http.MethodPost, "/notifications", billing, body, "Idempotency-Key", "k1")
	if status != 201 {
		t.Fatalf("app publish: %d %s", status, out)
	}
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != "from the app" {
		t.Fatalf("stream got %q", heraldtest.Title(t, m))
	}
	// The same key from another app is another request.
	status, hdr, _ := e.do(http.MethodPost, "/notifications", e.app("hr-app-id", "Notifications.Publish"), body, "Idempotency-Key", "k1")
	if status != 201 || hdr.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another app's key k1: %d replayed=%q", status, hdr.Get("Idempotent-Replayed"))
	}
	_, hdr, _ = e.do(http.MethodPost, "/notifications", billing, body, "Idempotency-Key", "k1")
	if hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatal("the app's own retry was not replayed")
	}
	for _, tt := range []struct {
		method, path, token string
		status              int
		code                string
	}{
		{http.MethodGet, "/events", billing, 403, "forbidden"},
		{http.MethodGet, "/notifications", billing, 403, "forbidden"},
		{http.MethodPost, "/session", billing, 403, "forbidden"},
		{http.MethodPost, "/notifications", e.app("nosy-app"), 403, "forbidden"},
		{http.MethodPost, "/notifications", e.user("user2@corp.example"), 403, "forbidden"},
	} {
		var b any
		if tt.method == http.MethodPost && tt.path == "/notifications" {
			b = body
		}
		status, _, out := e.do(tt.method, tt.path, tt.token, b)
		if status != tt.status || problem(t, out).Code != tt.code {
			t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, status, out, tt.status, tt.code)
		}
	}
}

// TestAzureReadyz: with the key endpoint unreachable at start, /readyz is
// 503 and Azure tokens get 503 while HS256 works; once the endpoint is up,
// the keys load by themselves; later outages change nothing.
func TestAzureReadyz(t *testing.T) {
	e := newAzureEnv(t, func(o *azureOptions) { o.down = true })
	status, _, out := e.do(http.MethodGet, "/readyz", "", nil)
	if status != 503 || problem(t, out).Code != "unavailable" {
		t.Fatalf("readyz without keys: %d %s", status, out)
	}
	azureTok := e.user("user2@corp.example")
	status, hdr, out := e.do(http.MethodGet, "/notifications", azureTok, nil)
	if status != 503 || problem(t, out).Code != "unavailable" || hdr.Get("WWW-Authenticate") != "" {
		t.Fatalf("azure token without keys: %d %v %s", status, hdr, out)
	}
	if status, _, out := e.do(http.MethodGet, "/notifications", e.token("user3"), nil); status != 200 {
		t.Fatalf("HS256 without azure keys: %d %s", status, out)
	}
	e.iss.SetDown(false)
	select {
	case <-e.az.Loaded():
	case <-time.After(wait):
		t.Fatal("keys not loaded after the endpoint came up")
	}
	if status, _, out := e.do(http.MethodGet, "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz with keys: %d %s", status, out)
	}
	e.iss.SetDown(true)
	if status, _, out := e.do(http.MethodGet, "/notifications", azureTok, nil); status != 200 {
		t.Fatalf("azure token, endpoint down after the load: %d %s", status, out)
	}
	if status, _, out := e.do(http.MethodGet, "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz, endpoint down after the load: %d %s", status, out)
	}
}

// countingDirectory counts the lookups that reach the real store.
type countingDirectory struct {
	auth.Directory
	calls atomic.Int64
}

func (d *countingDirectory) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	d.calls.Add(1)
	return d.Directory.EmployeeByLogin(ctx, login)
}

// TestReconnectStormQueries: many streams of N employees connecting, then
// all reconnecting, cost about N directory queries, not one per stream.
func TestReconnectStormQueries(t *testing.T) {
	dir := &countingDirectory{}
	e := newAzureEnv(t, func(o *azureOptions) {
		o.dir = func(d auth.Directory) auth.Directory { dir.Directory = d; return dir }
	})
	const employees, tabs = 5, 8
	tokens := make([]string, employees)
	for i := range tokens {
		tokens[i] = e.user(fmt.Sprintf("USER%d@corp.example", i+1))
	}
	connectAll := func() []*heraldtest.Stream {
		var (
			mu      sync.Mutex
			streams []*heraldtest.Stream
			wg      sync.WaitGroup
		)
		for i := range employees * tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, resp, body := heraldtest.OpenStream(t, e.URL+"/events", tokens[i%employees])
				if s == nil {
					t.Errorf("stream %d: %d %s", i, resp.StatusCode, body)
					return
				}
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return streams
	}
	for round := range 3 { // connect, then two reconnect storms
		streams := connectAll()
		for _, s := range streams {
			s.Close()
		}
		if t.Failed() {
			t.FailNow()
		}
		// The server notices the closed connections shortly; until then
		// they count against the 10 streams per employee.
		for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
			if n, _ := e.Hub.Stats(); n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("closed streams still open on the server")
			}
		}
		if n := dir.calls.Load(); n > 2*employees {
			t.Fatalf("round %d: %d streams of %d employees made %d directory queries so far, want about %d",
				round, len(streams), employees, n, employees)
		}
	}
	if dir.calls.Load() < employees {
		t.Fatalf("%d queries for %d employees", dir.calls.Load(), employees)
	}
}
