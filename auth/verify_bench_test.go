package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"github.com/corp/herald/internal/oidctest"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
)

var benchSecret = []byte("bench-secret-bench-secret-bench-secret")

// newAuthenticator is an HS256 authenticator over a real SQLite directory
// holding employee 1 (ana).
func newAuthenticator(b *testing.B) *auth.Authenticator {
	b.Helper()
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, _, err := db.PutEmployee(context.Background(), store.Employee{ID: 1, Email: "ana@corp.example", Username: "ana"}); err != nil {
		b.Fatal(err)
	}
	a, err := auth.New(auth.Config{Secret: benchSecret, Directory: db, PublisherRoles: []string{"service"}})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkVerifyHS256 checks a cookie-format token (signature and claims),
// as every stream connect and publish does.
func BenchmarkVerifyHS256(b *testing.B) {
	a := newAuthenticator(b)
	auth.WithoutVerifiedCache(a) // a new token's full verification
	tok, err := auth.MintHS256(benchSecret, auth.TokenSpec{User: "ana", Name: "Ana", Roles: []string{"admin"}, TTL: time.Hour}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateHS256 is a request with an HS256 token never seen
// before (a new stream's): verify, then the (cached) directory lookup.
func BenchmarkAuthenticateHS256(b *testing.B) {
	a := newAuthenticator(b)
	auth.WithoutVerifiedCache(a)
	benchAuthenticate(b, a)
}

// BenchmarkAuthenticateHS256SameToken is a publisher sending the same token
// with every request: served from the cache of verified tokens.
func BenchmarkAuthenticateHS256SameToken(b *testing.B) {
	benchAuthenticate(b, newAuthenticator(b))
}

func benchAuthenticate(b *testing.B, a *auth.Authenticator) {
	tok, err := auth.MintHS256(benchSecret, auth.TokenSpec{User: "ana", TTL: time.Hour}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/events", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if id, err := a.Authenticate(r); err != nil || id.Employee.ID != 1 {
			b.Fatalf("authenticate: %+v %v", id, err)
		}
	}
}

// rs256Fixture is an Azure-like key set (an RSA 2048 key without alg, as
// Azure publishes them) and a user token signed with it.
func rs256Fixture(b *testing.B) (jwk.Set, string) {
	b.Helper()
	const iss = "https://login.microsoftonline.com/bench-tenant/v2.0"
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		b.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "k1")
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		b.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	now := time.Now()
	tok, err := jwt.NewBuilder().Issuer(iss).Audience([]string{"api://herald"}).IssuedAt(now).NotBefore(now).
		Expiration(now.Add(time.Hour)).Claim("upn", "ana@corp.example").Claim("ver", "2.0").Build()
	if err != nil {
		b.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, priv))
	if err != nil {
		b.Fatal(err)
	}
	return set, string(signed)
}

// verifyRS256 is what an Azure verifier does per token: pick the key by
// kid, infer RS256 from the key type, check signature, exp/nbf, iss, aud.
func verifyRS256(set jwk.Set, raw string) error {
	_, err := jwt.ParseString(raw,
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)),
		jwt.WithValidate(true),
		jwt.WithIssuer("https://login.microsoftonline.com/bench-tenant/v2.0"),
		jwt.WithAudience("api://herald"),
		jwt.WithAcceptableSkew(auth.Skew),
	)
	return err
}

// BenchmarkVerifyRS256 checks an Azure-style RS256 token with jwx directly
// (main has no Azure verifier yet); "parallel" runs on every core, which is
// the ceiling for new RS256-authenticated streams per second.
func BenchmarkVerifyRS256(b *testing.B) {
	set, tok := rs256Fixture(b)
	if err := verifyRS256(set, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := verifyRS256(set, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := verifyRS256(set, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
}

// BenchmarkAuthenticateAzureRS256 is Herald's whole path for an Azure user
// token (route by iss, key by kid, RS256 verify, claims, cached lookup), the
// cost of each new authenticated stream with RS256 tokens.
func BenchmarkAuthenticateAzureRS256(b *testing.B) { benchAzure(b, false) }

// BenchmarkAuthenticateAzureRS256SameToken: the same token again (a service
// publishing), from the cache of verified tokens.
func BenchmarkAuthenticateAzureRS256SameToken(b *testing.B) { benchAzure(b, true) }

func benchAzure(b *testing.B, cached bool) {
	iss := oidctest.New(b)
	az := newAzure(b, iss, newClock())
	loaded(b, az)
	a := newAuth(b, az, openStore(b))
	if !cached {
		auth.WithoutVerifiedCache(a)
	}
	r := bearer(oidctest.Sign(b, iss.RSA, iss.User("user2@corp.example")))
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
