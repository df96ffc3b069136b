package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/auth"
)

// TestMintHS256Rules: minting needs a secret and a positive TTL; a name is
// written only when given; the token's subject is its user, else its sub.
func TestMintHS256Rules(t *testing.T) {
	now := time.Now()
	if _, err := auth.MintHS256(nil, auth.TokenSpec{User: "u", TTL: time.Hour}, now); err == nil {
		t.Error("minted without a secret")
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "u", TTL: ttl}, now); err == nil {
			t.Errorf("minted with TTL %v", ttl)
		}
	}
	tok, err := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "u", TTL: time.Second}, now)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if strings.Contains(string(payload), `"name"`) || strings.Contains(string(payload), `"iss"`) || strings.Contains(string(payload), `"rol"`) {
		t.Fatalf("claims %s: name, iss or rol written without being given", payload)
	}

	a := newAuth(t, nil, openStore(t))
	for _, tt := range []struct {
		name        string
		set         func(jwt.Token)
		subject     string
		login, user string
	}{
		{"user and sub", func(tok jwt.Token) { _ = tok.Set(jwt.SubjectKey, "other") }, "user2", "user2", "user2"},
		{"sub only", func(tok jwt.Token) { _ = tok.Remove("user"); _ = tok.Set(jwt.SubjectKey, "app-1") }, "app-1", "", ""},
	} {
		c, err := a.Verify(t.Context(), signed(t, jwa.HS256, []byte(testSecret), now, tt.set))
		if err != nil || c.Subject != tt.subject || c.Login != tt.login {
			t.Errorf("%s: claims %+v, %v; want subject %q, login %q", tt.name, c, err, tt.subject, tt.login)
		}
	}
}
