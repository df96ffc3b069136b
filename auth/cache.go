package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/corp/herald/store"
)

// loginCache remembers directory lookups briefly, so that a reconnect storm
// (thousands of streams coming back at once) costs one query per employee
// rather than one per stream, and many tabs of one employee share a query.
// "Not found" is remembered for a shorter time. Directory changes made on
// this instance purge it at once.
//
// When the directory fails (the store is down), an entry that expired less
// than maxStale ago is served rather than the error: the store cannot have
// changed meanwhile, and a client that reconnects during an outage keeps its
// stream (which catches up once the store is back) instead of getting 503.
type loginCache struct {
	dir              Directory
	size             int
	ttl, negativeTTL time.Duration
	now              func() time.Time
	group            singleflight.Group

	mu      sync.Mutex // guards entries
	entries map[string]cacheEntry
}

// maxStale is how long past its expiry a found entry may still be served
// while the directory fails.
const maxStale = 10 * time.Minute

// lookupTimeout bounds a shared directory lookup. It runs on a context of
// its own, not on the request of whoever asked first: when that client
// leaves, the others waiting for the same lookup must still get its answer
// (the key set's refresh works the same way, see jwks.go). The store bounds
// its calls too; this keeps the lookup's goroutine from outliving a store
// that does not.
const lookupTimeout = 10 * time.Second

type cacheEntry struct {
	emp     store.Employee
	found   bool
	expires time.Time
}

func (e cacheEntry) answer() (store.Employee, error) {
	if !e.found {
		return store.Employee{}, store.ErrNotFound
	}
	return e.emp, nil
}

func newLoginCache(dir Directory, size int, ttl, negativeTTL time.Duration, now func() time.Time) *loginCache {
	if size <= 0 {
		size = 10000
	}
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if negativeTTL <= 0 {
		negativeTTL = 5 * time.Second
	}
	return &loginCache{dir: dir, size: size, ttl: ttl, negativeTTL: negativeTTL, now: now, entries: make(map[string]cacheEntry)}
}

func (c *loginCache) lookup(ctx context.Context, login string) (store.Employee, error) {
	key := store.NormalizeLogin(login)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.answer()
	}
	shared := c.group.DoChan(key, func() (any, error) {
		// A caller that found the entry stale just before another lookup
		// refreshed it, and came here once that lookup had ended, starts a
		// lookup of its own: the refreshed entry answers it.
		c.mu.Lock()
		fresh, ok := c.entries[key]
		c.mu.Unlock()
		if ok && c.now().Before(fresh.expires) {
			return fresh.answer()
		}
		// Detached from the first caller's cancellation, keeping its values.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		emp, err := c.dir.EmployeeByLogin(lctx, key)
		switch {
		case err == nil:
			c.put(key, cacheEntry{emp: emp, found: true, expires: c.now().Add(c.ttl)})
		case errors.Is(err, store.ErrNotFound):
			c.put(key, cacheEntry{expires: c.now().Add(c.negativeTTL)})
		}
		return emp, err
	})
	var (
		v   any
		err error
	)
	select {
	case res := <-shared:
		v, err = res.Val, res.Err
	case <-ctx.Done():
		return store.Employee{}, ctx.Err() // this caller left; the lookup goes on for the others
	}
	if err != nil {
		if ok && e.found && !errors.Is(err, store.ErrNotFound) && now.Before(e.expires.Add(maxStale)) {
			return e.emp, nil
		}
		return store.Employee{}, err
	}
	return v.(store.Employee), nil
}

func (c *loginCache) put(key string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		c.evictLocked()
	}
	c.entries[key] = e
}

// evictLocked drops expired entries, and if that frees too little, about a
// tenth of the rest (map order is random enough). c.mu must be held.
func (c *loginCache) evictLocked() {
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	drop := len(c.entries) - c.size*9/10
	for k := range c.entries {
		if drop <= 0 {
			break
		}
		delete(c.entries, k)
		drop--
	}
}

func (c *loginCache) purge() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
