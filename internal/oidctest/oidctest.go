// Package oidctest is an Azure AD stand-in for tests: a real HTTP server on
// 127.0.0.1 serving OIDC discovery and a JWKS, with real RSA and EC keys that
// can be rotated, a switch that makes it unreachable, and counters of what
// was fetched. It mints tokens shaped like Azure's v1 and v2 access tokens.
// It imports none of Herald's packages, so any test can use it.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Tenant is the tenant ID of every test issuer.
const Tenant = "8f3c1a52-0d6e-4c1b-9a7e-2f5d3b6c9e01"

// Audience is the API's Application ID URI the tests configure; ClientID is
// its client ID (v2 tokens carry it as aud).
const (
	Audience = "api://herald-test"
	ClientID = "6b1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
)

// Key is a signing key of the issuer.
type Key struct {
	ID      string
	Alg     jwa.SignatureAlgorithm
	Private crypto.Signer
}

// Public returns the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the v2 issuer (AZURE_ISSUER_BASE_URL): {server}/{tenant}/v2.0.
	URL string
	// V1 is the v1 issuer of the same tenant: https://sts.windows.net/{tenant}/.
	V1 string
	// JWKSURI is where the keys are served.
	JWKSURI string
	// RSA and EC are the keys published at start.
	RSA, EC *Key

	srv        *httptest.Server
	down       atomic.Bool
	jwksHits   atomic.Int64
	discovered atomic.Int64

	mu   sync.Mutex // guards keys
	keys []*Key
}

// New starts an issuer publishing one RSA (RS256) and one EC (ES256) key.
// It stops when the test ends.
func New(tb testing.TB) *Issuer {
	tb.Helper()
	iss := &Issuer{V1: "https://sts.windows.net/" + Tenant + "/"}
	// Every field is set before the server starts: a request may arrive
	// at once (a client of an earlier test still polling this address).
	iss.srv = httptest.NewUnstartedServer(http.HandlerFunc(iss.serve))
	base := "http://" + iss.srv.Listener.Addr().String()
	iss.URL = base + "/" + Tenant + "/v2.0"
	iss.JWKSURI = base + "/" + Tenant + "/discovery/v2.0/keys"
	iss.RSA = NewKey(tb, "rsa-1", jwa.RS256)
	iss.EC = NewKey(tb, "ec-1", jwa.ES256)
	iss.Publish(iss.RSA, iss.EC)
	iss.srv.Start()
	tb.Cleanup(iss.srv.Close)
	return iss
}

// NewKey generates a key for alg: RSA 2048 for RS*/PS*, the matching curve
// for ES*.
func NewKey(tb testing.TB, id string, alg jwa.SignatureAlgorithm) *Key {
	tb.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jwa.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return &Key{ID: id, Alg: alg, Private: priv}
}

// Publish replaces the served key set (a rotation).
func (iss *Issuer) Publish(keys ...*Key) {
	iss.mu.Lock()
	iss.keys = keys
	iss.mu.Unlock()
}

// SetDown makes the issuer unreachable (connections are dropped) or back.
func (iss *Issuer) SetDown(down bool) { iss.down.Store(down) }

// JWKSFetches counts the key set requests answered so far.
func (iss *Issuer) JWKSFetches() int64 { return iss.jwksHits.Load() }

// DiscoveryFetches counts the discovery requests answered so far.
func (iss *Issuer) DiscoveryFetches() int64 { return iss.discovered.Load() }

func (iss *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	if iss.down.Load() {
		// Unreachable: drop the connection without an answer.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	switch {
	case r.URL.Path == "/"+Tenant+"/v2.0/.well-known/openid-configuration":
		iss.discovered.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.JWKSURI,
			"token_endpoint":                        iss.srv.URL + "/" + Tenant + "/oauth2/v2.0/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case r.URL.Path == strings.TrimPrefix(iss.JWKSURI, iss.srv.URL):
		iss.jwksHits.Add(1)
		iss.mu.Lock()
		keys := iss.keys
		iss.mu.Unlock()
		set := jwk.NewSet()
		for _, k := range keys {
			pub, err := jwk.FromRaw(k.Public())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			// Like Azure: kid and use, no alg.
			_ = pub.Set(jwk.KeyIDKey, k.ID)
			_ = pub.Set(jwk.KeyUsageKey, "sig")
			_ = set.AddKey(pub)
		}
		writeJSON(w, set)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Sign signs claims with key, putting key.ID (when not empty) in the kid
// header.
func Sign(tb testing.TB, key *Key, claims map[string]any) string {
	tb.Helper()
	return SignAs(tb, key.Alg, key.Private, key.ID, claims)
}

// SignAs signs claims with any algorithm, key and kid (empty: no kid).
func SignAs(tb testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	tb.Helper()
	b := jwt.NewBuilder()
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if kid != "" {
		_ = hdr.Set(jws.KeyIDKey, kid)
	}
	_ = hdr.Set(jws.TypeKey, "JWT")
	out, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// User returns the claims of a v2 delegated (user) access token for login,
// valid for an hour: aud is the client ID, preferred_username the login.
func (iss *Issuer) User(login string, roles ...string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": iss.URL, "aud": ClientID, "tid": Tenant, "ver": "2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": "sub-" + login, "oid": "oid-" + login, "azp": "spa-client-id", "scp": "Notifications.Read",
		"preferred_username": login, "name": "Name of " + login, "idtyp": "user",
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// V1User returns the claims of a v1 delegated access token for login (iss
// https://sts.windows.net/{tenant}/, aud the App ID URI, upn the login), as
// Azure issues when the API's manifest keeps accessTokenAcceptedVersion null.
func (iss *Issuer) V1User(login string, roles ...string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": iss.V1, "aud": Audience, "tid": Tenant, "ver": "1.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": "sub-" + login, "oid": "oid-" + login, "appid": "spa-client-id", "scp": "Notifications.Read",
		"upn": login, "unique_name": login, "name": "Name of " + login,
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// App returns the claims of a v2 app-only (client credentials) access
// token of application appID, valid for an hour.
func (iss *Issuer) App(appID string, roles ...string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": iss.URL, "aud": ClientID, "tid": Tenant, "ver": "2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": "oid-" + appID, "oid": "oid-" + appID, "azp": appID, "azpacr": "1", "idtyp": "app",
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// With returns a copy of claims with the given pairs set (a nil value
// removes the claim).
func With(claims map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(claims)+len(kv)/2)
	for k, v := range claims {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}
