package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/internal/oidctest"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rsaPublicPEM is the RSA key's public half as a PEM document: what an
// attacker would use as the "secret" of an HS256 token.
func rsaPublicPEM(t testing.TB, k *oidctest.Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestAzureTokens: every kind of Azure token, good and bad, through
// Authenticate (extraction, verification, resolution).
func TestAzureTokens(t *testing.T) {
	iss := oidctest.New(t)
	ps256 := oidctest.NewKey(t, "ps-1", jwa.PS256)
	iss.Publish(iss.RSA, iss.EC, ps256)
	az := newAzure(t, iss, newClock())
	loaded(t, az)
	a := newAuth(t, az, openStore(t))
	now := time.Now()
	user := iss.User("User2@Corp.Example")
	valid := oidctest.Sign(t, iss.RSA, user)
	parts := strings.Split(valid, ".")
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	es384 := oidctest.NewKey(t, "ec-1", jwa.ES384) // an ES384 token under the P-256 key's kid

	type want struct {
		status   int // 0: accepted
		code     string
		employee int64
		service  string // the subject of a service
	}
	tests := []struct {
		name string
		req  *http.Request
		want want
	}{
		{"valid v2 (RS256, preferred_username, mixed case)", bearer(valid), want{employee: 2}},
		{"valid v2 (ES256)", bearer(oidctest.Sign(t, iss.EC, user)), want{employee: 2}},
		{"valid v2 (PS256)", bearer(oidctest.Sign(t, ps256, user)), want{employee: 2}},
		{"valid v1 (sts.windows.net, App ID URI, upn)", bearer(oidctest.Sign(t, iss.RSA, iss.V1User("user3@corp.example"))), want{employee: 3}},
		{"upn wins over preferred_username", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "upn", "user4@corp.example"))), want{employee: 4}},
		{"email only, not trusted (AZURE_TRUST_EMAIL_CLAIM off)", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "preferred_username", nil, "email", "USER5@corp.example"))), want{403, "unknown_employee", 0, ""}},
		{"email ignored when preferred_username names someone", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "email", "user5@corp.example"))), want{employee: 2}},
		{"aud list with one accepted", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "aud", []string{"api://other", oidctest.ClientID}))), want{employee: 2}},
		{"expired within the skew", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "exp", now.Add(-30*time.Second).Unix()))), want{employee: 2}},
		{"nbf within the skew", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "nbf", now.Add(30*time.Second).Unix()))), want{employee: 2}},
		{"app-only with the publisher role", bearer(oidctest.Sign(t, iss.RSA, iss.App("billing-app", "Notifications.Publish"))), want{service: "billing-app"}},
		{"app-only v1 (no idtyp, appid, oid == sub)", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(iss.App("x", "Notifications.Publish"), "idtyp", nil, "azp", nil, "azpacr", nil, "appid", "hr-sync", "iss", iss.V1, "aud", oidctest.Audience))), want{service: "hr-sync"}},
		{"cookie with several cookies and odd spacing", request("Cookie", "theme=dark ;  token="+valid+";x=1"), want{employee: 2}},
		{"header wins over a cookie of someone else", request("Authorization", "Bearer "+valid, "Cookie", "token="+oidctest.Sign(t, iss.RSA, iss.User("user3@corp.example"))), want{employee: 2}},

		{"app-only without a publisher role", bearer(oidctest.Sign(t, iss.RSA, iss.App("nosy-app"))), want{403, "forbidden", 0, ""}},
		{"app-only with another role only", bearer(oidctest.Sign(t, iss.RSA, iss.App("nosy-app", "Reports.Read"))), want{403, "forbidden", 0, ""}},
		{"user token naming no user", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "preferred_username", nil))), want{403, "unknown_employee", 0, ""}},
		{"unknown user", bearer(oidctest.Sign(t, iss.RSA, iss.User("nobody@corp.example"))), want{403, "unknown_employee", 0, ""}},
		{"wrong aud", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "aud", "api://another-api"))), want{401, "invalid_token", 0, ""}},
		{"wrong iss (another tenant)", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "iss", "https://login.microsoftonline.com/00000000-1111-2222-3333-444444444444/v2.0"))), want{401, "invalid_token", 0, ""}},
		{"expired", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "exp", now.Add(-2*time.Minute).Unix()))), want{401, "token_expired", 0, ""}},
		{"nbf in the future", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "nbf", now.Add(5*time.Minute).Unix()))), want{401, "invalid_token", 0, ""}},
		{"iat in the future", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "iat", now.Add(5*time.Minute).Unix()))), want{401, "invalid_token", 0, ""}},
		{"no exp", bearer(oidctest.Sign(t, iss.RSA, oidctest.With(user, "exp", nil))), want{401, "invalid_token", 0, ""}},
		{"alg none", bearer(b64(`{"alg":"none","kid":"rsa-1"}`) + "." + b64(`{"iss":"`+iss.URL+`","aud":"`+oidctest.ClientID+`","preferred_username":"user2@corp.example","exp":`+exp+`}`) + "."), want{401, "invalid_token", 0, ""}},
		{"HS256 signed with the RSA public key", bearer(oidctest.SignAs(t, jwa.HS256, rsaPublicPEM(t, iss.RSA), "rsa-1", user)), want{401, "invalid_token", 0, ""}},
		{"HS256 with the Azure iss and JWT_SECRET", bearer(oidctest.SignAs(t, jwa.HS256, []byte(testSecret), "", user)), want{401, "invalid_token", 0, ""}},
		{"RS256 under an EC key's kid", bearer(oidctest.SignAs(t, jwa.RS256, iss.RSA.Private, "ec-1", user)), want{401, "invalid_token", 0, ""}},
		{"ES384 under a P-256 key", bearer(oidctest.Sign(t, es384, user)), want{401, "invalid_token", 0, ""}},
		{"missing kid", bearer(oidctest.SignAs(t, jwa.RS256, iss.RSA.Private, "", user)), want{401, "invalid_token", 0, ""}},
		{"signed by a key the issuer does not hold", bearer(oidctest.SignAs(t, jwa.RS256, oidctest.NewKey(t, "x", jwa.RS256).Private, "rsa-1", user)), want{401, "invalid_token", 0, ""}},
		{"tampered payload", bearer(parts[0] + "." + b64(`{"iss":"`+iss.URL+`","aud":"`+oidctest.ClientID+`","preferred_username":"user1@corp.example","exp":`+exp+`}`) + "." + parts[2]), want{401, "invalid_token", 0, ""}},
		{"truncated", bearer(valid[:len(valid)-12]), want{401, "invalid_token", 0, ""}},
		{"two parts", bearer(parts[0] + "." + parts[1]), want{401, "invalid_token", 0, ""}},
		{"bad base64", bearer(parts[0] + ".%%%." + parts[2]), want{401, "invalid_token", 0, ""}},
		{"100 KiB token", bearer(parts[0] + "." + strings.Repeat("A", 100<<10) + "." + parts[2]), want{401, "invalid_token", 0, ""}},
		{"no token", request(), want{401, "missing_token", 0, ""}},
		{"bad header wins over a good cookie", request("Authorization", "Bearer nope", "Cookie", "token="+valid), want{401, "invalid_token", 0, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(tt.req)
			if tt.want.status != 0 {
				if err == nil {
					t.Fatalf("accepted as %+v, want %d %s", id, tt.want.status, tt.want.code)
				}
				ae := authError(t, err)
				t.Logf("%d %s: %s", ae.Status, ae.Code, ae.Detail)
				if ae.Status != tt.want.status || ae.Code != tt.want.code {
					t.Fatalf("got %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Detail, tt.want.status, tt.want.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.Issuer != iss.URL {
				t.Errorf("identity issuer %q, want %q", id.Issuer, iss.URL)
			}
			switch {
			case tt.want.service != "":
				if id.Kind != auth.KindService || id.Subject != tt.want.service || !id.Publisher {
					t.Fatalf("got %+v, want the service %s", id, tt.want.service)
				}
			case id.Kind != auth.KindEmployee || id.Employee.ID != tt.want.employee:
				t.Fatalf("got %+v, want employee %d", id, tt.want.employee)
			}
		})
	}
}

// TestAzureKeyRotation: an unknown kid makes one refresh, and no more than
// one per KidRefresh however many such tokens come; a key published later
// is found by the next refresh allowed.
func TestAzureKeyRotation(t *testing.T) {
	iss := oidctest.New(t)
	clk := newClock()
	az := newAzure(t, iss, clk)
	loaded(t, az)
	ctx := context.Background()
	fetches := iss.JWKSFetches()
	next := oidctest.NewKey(t, "rsa-2", jwa.RS256)
	tok := oidctest.Sign(t, next, iss.User("user2@corp.example"))

	expectUnknownKid := func(tok string) {
		t.Helper()
		_, err := az.Verify(ctx, tok)
		if ae := authError(t, err); ae.Status != 401 || ae.Code != "invalid_token" {
			t.Fatalf("got %d %s, want 401 invalid_token", ae.Status, ae.Code)
		}
	}
	expectUnknownKid(tok)
	if got := iss.JWKSFetches(); got != fetches+1 {
		t.Fatalf("an unknown kid made %d key fetches, want 1", got-fetches)
	}
	// A flood of made-up kids, all at once, makes no fetch.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := az.Verify(ctx, oidctest.SignAs(t, jwa.RS256, iss.RSA.Private, "garbage-"+strconv.Itoa(i), iss.User("user2@corp.example")))
			if err == nil {
				t.Error("a made-up kid was accepted")
			}
		}()
	}
	wg.Wait()
	// The rotation: the new key is published, but the limit still holds.
	iss.Publish(iss.RSA, next)
	expectUnknownKid(tok)
	if got := iss.JWKSFetches(); got != fetches+1 {
		t.Fatalf("%d key fetches within the refresh limit, want 1", got-fetches)
	}
	clk.Advance(auth.DefaultKidRefresh + time.Second)
	if _, err := az.Verify(ctx, tok); err != nil {
		t.Fatalf("the rotated key is not found after the limit: %v", err)
	}
	if got := iss.JWKSFetches(); got != fetches+2 {
		t.Fatalf("%d key fetches, want 2", got-fetches)
	}
	// The old key still works (it is still published); a removed one does not.
	iss.Publish(next)
	if _, err := az.Verify(ctx, oidctest.Sign(t, iss.RSA, iss.User("user2@corp.example"))); err != nil {
		t.Fatalf("a cached key stopped working before a refresh: %v", err)
	}
	clk.Advance(auth.DefaultKidRefresh + time.Second)
	expectUnknownKid(oidctest.Sign(t, iss.EC, iss.User("user2@corp.example"))) // EC key gone: refresh
	expectUnknownKid(oidctest.Sign(t, iss.RSA, iss.User("user2@corp.example")))
}

// TestAzureConcurrentUnknownKid: many requests with one unknown kid at the
// same moment share one fetch.
func TestAzureConcurrentUnknownKid(t *testing.T) {
	iss := oidctest.New(t)
	clk := newClock()
	az := newAzure(t, iss, clk)
	loaded(t, az)
	next := oidctest.NewKey(t, "ec-2", jwa.ES256)
	iss.Publish(iss.RSA, iss.EC, next)
	fetches := iss.JWKSFetches()
	tok := oidctest.Sign(t, next, iss.User("user2@corp.example"))
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = az.Verify(context.Background(), tok)
		}()
	}
	wg.Wait()
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("40 concurrent unknown kids made %d fetches, want 1", got)
	}
	if _, err := az.Verify(context.Background(), tok); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

// TestAzureKeyEndpointDown: once loaded, the keys keep working while the
// endpoint is down; an unknown kid is then a plain 401, and the verifier
// stays ready.
func TestAzureKeyEndpointDown(t *testing.T) {
	iss := oidctest.New(t)
	clk := newClock()
	az := newAzure(t, iss, clk)
	loaded(t, az)
	iss.SetDown(true)
	for _, k := range []*oidctest.Key{iss.RSA, iss.EC} {
		if _, err := az.Verify(context.Background(), oidctest.Sign(t, k, iss.User("user2@corp.example"))); err != nil {
			t.Fatalf("cached %s key: %v", k.ID, err)
		}
	}
	_, err := az.Verify(context.Background(), oidctest.SignAs(t, jwa.RS256, iss.RSA.Private, "new-kid", iss.User("user2@corp.example")))
	if ae := authError(t, err); ae.Status != 401 || ae.Code != "invalid_token" {
		t.Fatalf("unknown kid while the endpoint is down: %d %s", ae.Status, ae.Code)
	}
	if err := az.Ready(context.Background()); err != nil {
		t.Fatalf("not ready with cached keys: %v", err)
	}
}

// TestAzureUnreachableAtStart: the keys load in the background once the
// endpoint comes up; meanwhile Azure tokens get 503 and HS256 tokens work.
func TestAzureUnreachableAtStart(t *testing.T) {
	iss := oidctest.New(t)
	iss.SetDown(true)
	az := newAzure(t, iss, newClock())
	a := newAuth(t, az, openStore(t))
	if err := az.Ready(context.Background()); err == nil {
		t.Fatal("ready without keys")
	}
	azureTok := oidctest.Sign(t, iss.RSA, iss.User("user2@corp.example"))
	_, err := a.Authenticate(bearer(azureTok))
	if ae := authError(t, err); ae.Status != 503 || ae.Code != "unavailable" {
		t.Fatalf("azure token before the keys: %d %s, want 503 unavailable", ae.Status, ae.Code)
	}
	hs, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user3", TTL: time.Hour}, time.Now())
	if id, err := a.Authenticate(bearer(hs)); err != nil || id.Employee.ID != 3 {
		t.Fatalf("HS256 while the keys are not loaded: %+v %v", id, err)
	}
	iss.SetDown(false)
	loaded(t, az)
	if err := az.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after the keys loaded: %v", err)
	}
	if id, err := a.Authenticate(bearer(azureTok)); err != nil || id.Employee.ID != 2 {
		t.Fatalf("azure token after the keys loaded: %+v %v", id, err)
	}
}

// TestAzureDiscovery: without AZURE_JWKS_URI the key set URL comes from
// discovery; with it, discovery is skipped.
func TestAzureDiscovery(t *testing.T) {
	iss := oidctest.New(t)
	loaded(t, newAzure(t, iss, newClock()))
	if iss.DiscoveryFetches() != 1 || iss.JWKSFetches() != 1 {
		t.Fatalf("discovery %d, jwks %d fetches; want 1 and 1", iss.DiscoveryFetches(), iss.JWKSFetches())
	}
	iss2 := oidctest.New(t)
	az := newAzure(t, iss2, newClock(), func(c *auth.AzureConfig) { c.JWKSURI = iss2.JWKSURI })
	loaded(t, az)
	if iss2.DiscoveryFetches() != 0 {
		t.Fatalf("discovery fetched although AZURE_JWKS_URI is set")
	}
	if _, err := az.Verify(context.Background(), oidctest.Sign(t, iss2.EC, iss2.User("a@b.c"))); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestAzureCloseStopsLoading: Close returns while the loader is retrying,
// and after it no fetch happens.
func TestAzureCloseStopsLoading(t *testing.T) {
	iss := oidctest.New(t)
	iss.SetDown(true)
	az := newAzure(t, iss, newClock())
	az.Close()
	iss.SetDown(false)
	before := iss.DiscoveryFetches() + iss.JWKSFetches()
	az.Close() // twice is fine
	if err := az.Ready(context.Background()); err == nil {
		t.Fatal("ready after Close without keys")
	}
	if after := iss.DiscoveryFetches() + iss.JWKSFetches(); after != before {
		t.Fatalf("fetches after Close: %d", after-before)
	}
}

func TestAzureConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  auth.AzureConfig
		want string
	}{
		{"not a URL", auth.AzureConfig{Issuer: "login.microsoftonline.com/x/v2.0", Audiences: []string{"a"}}, "not an http(s) URL"},
		{"multi-tenant", auth.AzureConfig{Issuer: "https://login.microsoftonline.com/common/v2.0", Audiences: []string{"a"}}, "names no tenant"},
		{"organizations", auth.AzureConfig{Issuer: "https://login.microsoftonline.com/organizations/v2.0", Audiences: []string{"a"}}, "names no tenant"},
		{"no audience", auth.AzureConfig{Issuer: "https://login.microsoftonline.com/t/v2.0", Audiences: []string{" "}}, "AZURE_AUDIENCE"},
		{"http keys for an https issuer", auth.AzureConfig{Issuer: "https://login.microsoftonline.com/t/v2.0", JWKSURI: "http://keys.example/k", Audiences: []string{"a"}}, "plain http"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			az, err := auth.NewAzure(tt.cfg)
			if err == nil {
				az.Close()
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestAzureBackgroundRefresh: the jwk.Cache refreshes the keys on its own
// schedule: a rotated key is found without any forced refresh.
func TestAzureBackgroundRefresh(t *testing.T) {
	iss := oidctest.New(t)
	clk := newClock() // never advanced: after the first, no forced refresh is allowed
	az := newAzure(t, iss, clk, func(c *auth.AzureConfig) { c.KeyRefresh = 2 * time.Second })
	loaded(t, az)
	next := oidctest.NewKey(t, "ec-2", jwa.ES256)
	tok := oidctest.Sign(t, next, iss.User("user2@corp.example"))
	if _, err := az.Verify(context.Background(), tok); err == nil {
		t.Fatal("an unpublished key was accepted")
	}
	iss.Publish(iss.RSA, next)
	before := iss.JWKSFetches()
	deadline := time.Now().Add(wait)
	for iss.JWKSFetches() == before {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		_, err := az.Verify(context.Background(), tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key after a background refresh: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the fetch was counted before its answer was read
	}
}

// TestAzureTrustEmailClaim: with AZURE_TRUST_EMAIL_CLAIM=true, a user token
// with only an email claim names the employee with that login; upn and
// preferred_username still win over it.
func TestAzureTrustEmailClaim(t *testing.T) {
	iss := oidctest.New(t)
	az := newAzure(t, iss, newClock(), func(c *auth.AzureConfig) { c.TrustEmailClaim = true })
	loaded(t, az)
	a := newAuth(t, az, openStore(t))
	user := iss.User("user2@corp.example")
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   int64
	}{
		{"email only", oidctest.With(user, "preferred_username", nil, "email", "USER5@corp.example"), 5},
		{"preferred_username first", oidctest.With(user, "email", "user5@corp.example"), 2},
	} {
		id, err := a.Authenticate(bearer(oidctest.Sign(t, iss.RSA, tt.claims)))
		if err != nil || id.Employee.ID != tt.want {
			t.Errorf("%s: %+v %v, want employee %d", tt.name, id.Employee, err, tt.want)
		}
	}
}
