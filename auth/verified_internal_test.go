package auth

import (
	"fmt"
	"testing"
	"time"
)

// TestVerifiedCacheBounds: a verified token is remembered until its expiry
// plus the skew (at most verifiedTTL); a full cache drops expired entries
// first and never grows past its size.
func TestVerifiedCacheBounds(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache()
	c.size = 10
	c.put("a", Claims{Subject: "a", ExpiresAt: now.Add(time.Minute)}, now)
	if got, ok := c.get("a", now); !ok || got.Subject != "a" {
		t.Fatalf("get after put: %+v, %v", got, ok)
	}
	if _, ok := c.get("a", now.Add(time.Minute+Skew)); ok {
		t.Fatal("an entry outlived its token's expiry plus the skew")
	}
	if _, ok := c.get("a", now); ok {
		t.Fatal("an expired entry was not dropped")
	}
	c.put("past", Claims{ExpiresAt: now.Add(-2 * Skew)}, now)
	if _, ok := c.get("past", now); ok {
		t.Fatal("a token past its expiry was cached")
	}
	c.put("long", Claims{ExpiresAt: now.Add(time.Hour)}, now)
	if _, ok := c.get("long", now.Add(verifiedTTL)); ok {
		t.Fatal("an entry outlived verifiedTTL")
	}
	for i := range 10 {
		c.put(fmt.Sprint("k", i), Claims{ExpiresAt: now.Add(time.Hour)}, now)
	}
	if n := len(c.entries); n != 10 {
		t.Fatalf("%d entries after filling, want 10", n)
	}
	c.put("one more", Claims{ExpiresAt: now.Add(time.Hour)}, now)
	if n := len(c.entries); n > 10 || n < 2 {
		t.Fatalf("%d entries after one past the size, want at most 10 (about a tenth dropped)", n)
	}
	if _, ok := c.get("one more", now); !ok {
		t.Fatal("the newest entry was not kept")
	}
	var off *verifiedCache // WithoutVerifiedCache
	off.put("x", Claims{ExpiresAt: now.Add(time.Hour)}, now)
	if _, ok := off.get("x", now); ok {
		t.Fatal("a nil cache returned an entry")
	}
}
