package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/auth"
)

// TestVerifiedTokensExpire: a token served from the cache of verified tokens
// is still refused once it expires, and a changed token is verified afresh.
func TestVerifiedTokensExpire(t *testing.T) {
	clk := newClock()
	a := newAuth(t, nil, openStore(t), func(c *auth.Config) { c.Now = clk.Now })
	tok, err := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user2", TTL: 2 * time.Minute}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // first verified, then from the cache
		if c, err := a.Verify(context.Background(), tok); err != nil || c.Login != "user2" {
			t.Fatalf("verify #%d: %+v, %v", i, c, err)
		}
	}
	// A tampered copy is not the cached token.
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	if _, err := a.Verify(context.Background(), tampered); authError(t, err).Code != auth.CodeInvalidToken {
		t.Fatalf("tampered token: %v", err)
	}
	clk.Advance(2*time.Minute + auth.Skew + time.Second)
	if _, err := a.Verify(context.Background(), tok); authError(t, err).Code != auth.CodeTokenExpired {
		t.Fatalf("expired token after caching: %v, want token_expired", err)
	}
}
