package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/store/sqlite"
)

// The bench's issuer must look like Azure AD to a verifier that follows
// OIDC discovery to the key set: its tokens then verify with the key set
// alone (kid match, algorithm inferred from the key: Azure keys carry none),
// with the issuer and audience checked and the user in upn.
func TestIssuerTokensVerifyThroughDiscovery(t *testing.T) {
	is, err := startIssuer("127.0.0.1:0", "api://herald-bench", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	resp, err := http.Get(is.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != is.url {
		t.Fatalf("discovery: %+v %v, want issuer %s", disc, err, is.url)
	}
	set, err := jwk.Fetch(context.Background(), disc.JWKSURI)
	if err != nil {
		t.Fatalf("fetch %s: %v", disc.JWKSURI, err)
	}
	m, err := newMinter(is.auth)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.employee(1000007, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseString(raw, jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)), jwt.WithValidate(true),
		jwt.WithIssuer(is.url), jwt.WithAudience("api://herald-bench"))
	if err != nil {
		t.Fatalf("verify the bench's RS256 token with its own key set: %v", err)
	}
	if upn, _ := tok.Get("upn"); upn != "bench1000007@bench.example" {
		t.Fatalf("upn = %v, want the employee's email", upn)
	}
	if is.discovery.Load() != 1 || is.jwks.Load() != 1 {
		t.Fatalf("issuer counted %d discovery and %d key set fetches, want 1 and 1", is.discovery.Load(), is.jwks.Load())
	}
}

// HS256 stream tokens are the seed systems' cookie format, which Herald's
// own verifier accepts; the publisher token is a service.
func TestHS256Tokens(t *testing.T) {
	m, err := newMinter(authConfig{Kind: "hs256", Secret: "s3cret-s3cret-s3cret-s3cret-s3cret", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := auth.New(auth.Config{Secret: []byte("s3cret-s3cret-s3cret-s3cret-s3cret"), Directory: db})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := m.employee(1000001, time.Now())
	c, err := a.Verify(context.Background(), raw)
	if err != nil || c.Login != "bench1000001" {
		t.Fatalf("stream token: %+v %v, want login bench1000001", c, err)
	}
	raw, _ = m.publisher(time.Now())
	c, err = a.Verify(context.Background(), raw)
	if err != nil || strings.Join(c.Roles, ",") != "service,Directory.Write" {
		t.Fatalf("publisher token: %+v %v, want roles service and Directory.Write", c, err)
	}
}
