package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/auth"
)

// signed signs claims for user2 with alg and key, on the clock's time
// (iat now, exp in an hour unless set).
func signed(t *testing.T, alg jwa.SignatureAlgorithm, key any, now time.Time, set func(jwt.Token)) string {
	t.Helper()
	tok := jwt.New()
	_ = tok.Set("user", "user2")
	_ = tok.Set(jwt.IssuedAtKey, now)
	_ = tok.Set(jwt.ExpirationKey, now.Add(time.Hour))
	if set != nil {
		set(tok)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return string(b)
}

// TestHS256ClockSkew pins the tolerated clock difference at 60 s on both
// edges of a token's validity: a token expired 59 s ago, or not valid for
// another 59 s, passes; at 61 s it is refused, with token_expired for exp.
func TestHS256ClockSkew(t *testing.T) {
	clk := newClock()
	dir := openStore(t)
	now := clk.Now().Truncate(time.Second)
	for _, tt := range []struct {
		name string
		set  func(jwt.Token)
		code string // "" accepted
	}{
		{"exp 59 s ago", func(tok jwt.Token) { _ = tok.Set(jwt.ExpirationKey, now.Add(-59*time.Second)) }, ""},
		{"exp 61 s ago", func(tok jwt.Token) { _ = tok.Set(jwt.ExpirationKey, now.Add(-61*time.Second)) }, auth.CodeTokenExpired},
		{"nbf in 59 s", func(tok jwt.Token) { _ = tok.Set(jwt.NotBeforeKey, now.Add(59*time.Second)) }, ""},
		{"nbf in 61 s", func(tok jwt.Token) { _ = tok.Set(jwt.NotBeforeKey, now.Add(61*time.Second)) }, auth.CodeInvalidToken},
		{"iat in 59 s", func(tok jwt.Token) { _ = tok.Set(jwt.IssuedAtKey, now.Add(59*time.Second)) }, ""},
		{"iat in 61 s", func(tok jwt.Token) { _ = tok.Set(jwt.IssuedAtKey, now.Add(61*time.Second)) }, auth.CodeInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh authenticator: nothing cached from another row.
			a := newAuth(t, nil, dir, func(c *auth.Config) { c.Now = func() time.Time { return now } })
			raw := signed(t, jwa.HS256, []byte(testSecret), now, tt.set)
			id, err := a.Authenticate(bearer(raw))
			if tt.code == "" {
				if err != nil || id.Employee.Username != "user2" {
					t.Fatalf("Authenticate = %+v, %v; want user2 accepted within the skew", id.Employee, err)
				}
				return
			}
			ae := authError(t, err)
			if ae.Status != http.StatusUnauthorized || ae.Code != tt.code {
				t.Fatalf("error %d %s (%s), want 401 %s", ae.Status, ae.Code, ae.Detail, tt.code)
			}
		})
	}
}

// TestAlgorithmNeverFromHeader: HS256 tokens are checked with HS256 and the
// secret, never with an algorithm their header names. A token signed with
// the secret under another HMAC algorithm, an unsigned one, one whose
// header names an asymmetric algorithm (signed with its own key, or with
// the secret as an HMAC key: the classic confusion) are all refused, 401
// invalid_token. (A header that names another algorithm over a genuine
// HS256 signature is not consulted at all: only the secret's holder can
// make one.)
func TestAlgorithmNeverFromHeader(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	a := newAuth(t, nil, openStore(t), func(c *auth.Config) { c.Now = clk.Now })

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKeys := map[jwa.SignatureAlgorithm]elliptic.Curve{jwa.ES256: elliptic.P256(), jwa.ES384: elliptic.P384(), jwa.ES512: elliptic.P521()}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := b64(`{"user":"user2","iat":` + strconv.FormatInt(now.Unix(), 10) + `,"exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `}`)
	// hmacWith signs header.payload with the secret (HMAC-SHA256) whatever
	// the header says.
	hmacWith := func(header string) string {
		in := b64(header) + "." + payload
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	// The control: HS256 with the secret passes.
	if id, err := a.Authenticate(bearer(hmacWith(`{"alg":"HS256","typ":"JWT"}`))); err != nil || id.Employee.Username != "user2" {
		t.Fatalf("HS256 control: %+v, %v", id.Employee, err)
	}
	type row struct{ name, token string }
	rows := []row{
		{"HS384 with the secret", signed(t, jwa.HS384, []byte(testSecret), now, nil)},
		{"HS512 with the secret", signed(t, jwa.HS512, []byte(testSecret), now, nil)},
		{"none, no signature", b64(`{"alg":"none","typ":"JWT"}`) + "." + payload + "."},
		{"None, no signature", b64(`{"alg":"None"}`) + "." + payload + "."},
		{"RS256 header, HS256 signature", hmacWith(`{"alg":"RS256"}`)},
		{"ES256 header, HS256 signature", hmacWith(`{"alg":"ES256"}`)},
		{"EdDSA header, HS256 signature", hmacWith(`{"alg":"EdDSA"}`)},
		{"none header, HS256 signature", hmacWith(`{"alg":"none"}`)},
		{"HS384 header, HS256 signature", hmacWith(`{"alg":"HS384"}`)},
		{"no alg, HS256 signature", hmacWith(`{"typ":"JWT"}`)},
		{"hs256 (lower case), HS256 signature", hmacWith(`{"alg":"hs256"}`)},
		{"EdDSA", signed(t, jwa.EdDSA, edKey, now, nil)},
	}
	for _, alg := range []jwa.SignatureAlgorithm{jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512} {
		rows = append(rows, row{alg.String(), signed(t, alg, rsaKey, now, nil)})
	}
	for alg, curve := range ecKeys {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{alg.String(), signed(t, alg, k, now, nil)})
	}
	for _, tt := range rows {
		id, err := a.Authenticate(bearer(tt.token))
		if err == nil {
			t.Errorf("%s: accepted as %+v", tt.name, id.Employee)
			continue
		}
		if ae := authError(t, err); ae.Status != http.StatusUnauthorized || ae.Code != auth.CodeInvalidToken {
			t.Errorf("%s: %d %s (%s), want 401 invalid_token", tt.name, ae.Status, ae.Code, ae.Detail)
		}
	}
}
