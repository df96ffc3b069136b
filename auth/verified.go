package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens that passed verification, so a publisher
// that sends the same token with every request pays for the signature and
// the parse once, not per request (at 1,000 publishes/s that was 15% of the
// server's CPU). It is keyed by a hash of the exact token, holds only what
// verification concluded (the claims), and an entry lives until the token's
// own expiry (with the skew verification allows) or verifiedTTL, whichever
// comes first, so a key rotated out of the JWKS stops vouching soon.
// Failures are never cached.
type verifiedCache struct {
	mu      sync.Mutex // guards entries
	entries map[[sha256.Size]byte]verifiedEntry
	size    int
}

type verifiedEntry struct {
	claims Claims
	until  time.Time
}

const (
	verifiedTTL  = 5 * time.Minute
	verifiedSize = 4096
)

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{entries: make(map[[sha256.Size]byte]verifiedEntry), size: verifiedSize}
}

func (c *verifiedCache) get(raw string, now time.Time) (Claims, bool) {
	if c == nil {
		return Claims{}, false
	}
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return Claims{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, k)
		return Claims{}, false
	}
	return e.claims, true
}

func (c *verifiedCache) put(raw string, cl Claims, now time.Time) {
	if c == nil {
		return
	}
	until := cl.ExpiresAt.Add(Skew)
	if limit := now.Add(verifiedTTL); limit.Before(until) {
		until = limit
	}
	if !now.Before(until) {
		return
	}
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for key, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries { // still full: drop about a tenth
			if len(c.entries) < c.size*9/10 {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = verifiedEntry{claims: cl, until: until}
}
