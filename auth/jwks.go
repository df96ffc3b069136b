package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// How the Azure keys are held.
//
// A jwk.Cache holds the key set and refreshes it in the background every
// KeyRefresh; its goroutines stop when Close cancels the verifier's
// lifetime. Two things are done beside it, because of how httprc v1 (under
// jwx v2) works:
//
//   - Reads. Cache.Get takes the entry's lock, which a fetch holds for the
//     whole HTTP request, so a hanging key endpoint would stall every
//     request. The cache's PostFetcher instead publishes each new set to an
//     atomic snapshot (keySet), which verification reads without waiting.
//   - Forced fetches. Every Cache.Refresh call schedules one more periodic
//     refresh of the URL, for good: a kid flood, even rate-limited, would
//     grow into a flood of background fetches. So the cache is refreshed
//     through Refresh exactly once (the first load, which starts its
//     schedule), and the start-up retries and unknown-kid refreshes fetch
//     directly, with the same client, checks and snapshot.
//
// Every fetch goes through Azure.get: a request bound to the verifier's
// lifetime and the client's timeout, answers other than 200 refused, bodies
// read to the end (at most maxKeyBody) and closed.

// maxKeyBody bounds a discovery document or key set.
const maxKeyBody = 1 << 20

// keySet is a usable key set, swapped whole.
type keySet struct{ set jwk.Set }

// refreshCall is a forced refresh in progress; callers with unknown kids
// wait for the same one.
type refreshCall struct {
	done chan struct{}
	err  error
}

// errKeysNotLoaded answers Azure tokens until the first key set is in. It
// is the server's problem, not the token's: 503, so clients retry rather
// than drop a good token.
var errKeysNotLoaded = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
	Detail: "Azure AD signing keys are not loaded yet; retry shortly"}

func newKeyCache(a *Azure) *jwk.Cache {
	// The refresh window is the cache's tick; a refresh fires on the first
	// tick after it is due.
	window := min(max(a.cfg.KeyRefresh/4, time.Second), 15*time.Minute)
	return jwk.NewCache(a.life,
		jwk.WithRefreshWindow(window),
		jwk.WithErrSink(refreshErrors{a}))
}

// refreshErrors logs the cache's failed background refreshes.
type refreshErrors struct{ a *Azure }

func (r refreshErrors) Error(err error) {
	r.a.log.Warn("azure key refresh failed; the cached keys stay in use", "err", err)
}

// Ready reports whether the keys are loaded; /readyz uses it. The message
// is generic: /readyz is public, the cause is in the logs.
func (a *Azure) Ready(context.Context) error {
	if a.keys.Load() == nil {
		return errors.New("azure ad signing keys not loaded yet")
	}
	return nil
}

// Loaded is closed once the first key set is in.
func (a *Azure) Loaded() <-chan struct{} { return a.loaded }

// load runs until the first key set is in (or Close), retrying with
// exponential backoff between RetryMin and RetryMax.
func (a *Azure) load() {
	defer a.wg.Done()
	delay := a.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := a.loadOnce()
		if err == nil {
			a.log.Info("azure ad signing keys loaded", "keys", a.keys.Load().set.Len(), "attempts", attempt)
			return
		}
		if a.life.Err() != nil {
			return
		}
		a.log.Warn("azure ad signing keys not loaded; retrying", "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-a.life.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, a.cfg.RetryMax)
	}
}

// loadOnce finds the key set URL (discovery), registers it with the cache
// on the first try, and loads it.
func (a *Azure) loadOnce() error {
	uri, err := a.keysURI()
	if err != nil {
		return err
	}
	if !a.cache.IsRegistered(uri) {
		err := a.cache.Register(uri,
			jwk.WithHTTPClient(cacheClient{a}),
			jwk.WithRefreshInterval(a.cfg.KeyRefresh),
			jwk.WithPostFetcher(jwk.PostFetchFunc(a.postFetch)))
		if err != nil {
			return fmt.Errorf("register key set: %w", err)
		}
		// The one Refresh: it loads the set and starts the cache's schedule.
		if _, err := a.cache.Refresh(a.life, uri); err != nil {
			return fmt.Errorf("load key set: %w", err)
		}
		return nil
	}
	return a.fetchKeys(a.life)
}

// keysURI returns the key set URL: configured, or found by discovery (which
// also adds the issuer discovery names to the accepted ones).
func (a *Azure) keysURI() (string, error) {
	a.mu.Lock()
	uri := a.jwksURI
	a.mu.Unlock()
	if uri != "" {
		return uri, nil
	}
	body, err := a.get(a.life, a.cfg.Issuer+"/.well-known/openid-configuration")
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if uri, err = checkFetchURL(doc.JWKSURI, a.cfg.Issuer); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	if t, ok := tenantOf(doc.Issuer); ok && !isMultiTenant(t) {
		a.setIssuers(doc.Issuer)
	}
	a.mu.Lock()
	a.jwksURI = uri
	a.mu.Unlock()
	return uri, nil
}

// checkFetchURL accepts an absolute http(s) URL; plain http only when the
// issuer itself is plain http (tests), never as a downgrade from https.
func checkFetchURL(raw, issuer string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !hasScheme(issuer, "http") {
		return "", fmt.Errorf("%q is plain http while the issuer is https", raw)
	}
	return u.String(), nil
}

func hasScheme(raw, scheme string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == scheme
}

// key returns the key for kid. An unknown kid triggers a forced refresh, at
// most one per KidRefresh, then one more look.
func (a *Azure) key(ctx context.Context, kid string) (jwk.Key, error) {
	ks := a.keys.Load()
	if ks == nil {
		return nil, errKeysNotLoaded
	}
	if k, ok := ks.set.LookupKeyID(kid); ok {
		return k, nil
	}
	if !a.forceRefresh(ctx) {
		return nil, invalid("unknown signing key (kid)")
	}
	if k, ok := a.keys.Load().set.LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, invalid("unknown signing key (kid)")
}

// forceRefresh fetches the key set now unless one was forced less than
// KidRefresh ago; callers arriving while a fetch runs wait for it. It
// reports whether a fetch completed (successfully or not) for this caller.
func (a *Azure) forceRefresh(ctx context.Context) bool {
	a.mu.Lock()
	c := a.refreshing
	if c == nil {
		now := a.cfg.Now()
		if now.Sub(a.lastForced) < a.cfg.KidRefresh || a.life.Err() != nil {
			a.mu.Unlock()
			return false
		}
		a.lastForced = now
		c = &refreshCall{done: make(chan struct{})}
		a.refreshing = c
		a.wg.Add(1)
		// The fetch runs on the verifier's lifetime, not the request's: a
		// caller that leaves must not fail it for the others waiting.
		go func() {
			defer a.wg.Done()
			err := a.fetchKeys(a.life)
			if err != nil {
				a.log.Warn("azure key refresh for an unknown kid failed; the cached keys stay in use", "err", err)
			}
			a.mu.Lock()
			c.err = err
			a.refreshing = nil
			a.mu.Unlock()
			close(c.done)
		}()
	}
	a.mu.Unlock()
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// fetchKeys fetches the key set directly (no new cache schedule) and
// publishes it.
func (a *Azure) fetchKeys(ctx context.Context) error {
	a.mu.Lock()
	uri := a.jwksURI
	a.mu.Unlock()
	if uri == "" {
		return errors.New("key set URL not known yet")
	}
	body, err := a.get(ctx, uri)
	if err != nil {
		return err
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return fmt.Errorf("parse key set %s: %w", uri, err)
	}
	_, err = a.postFetch(uri, set)
	return err
}

// postFetch keeps the usable signing keys of a fetched set and publishes
// them. A set without any is refused: the keys held stay in use.
func (a *Azure) postFetch(uri string, set jwk.Set) (jwk.Set, error) {
	usable := jwk.NewSet()
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyID() == "" || (k.KeyUsage() != "" && k.KeyUsage() != string(jwk.ForSignature)) {
			continue
		}
		switch k.(type) {
		case jwk.RSAPublicKey, jwk.ECDSAPublicKey:
			if err := usable.AddKey(k); err != nil {
				return nil, fmt.Errorf("key set %s: %w", uri, err)
			}
		}
	}
	if usable.Len() == 0 {
		return nil, fmt.Errorf("key set %s holds no usable signing keys (RSA or EC, with kid)", uri)
	}
	a.keys.Store(&keySet{set: usable})
	select {
	case <-a.loaded:
	default:
		close(a.loaded)
	}
	return usable, nil
}

// get fetches uri and returns its body; anything but 200 is an error.
func (a *Azure) get(ctx context.Context, uri string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", uri, resp.Status)
	}
	if len(body) > maxKeyBody {
		return nil, fmt.Errorf("get %s: answer larger than %d bytes", uri, maxKeyBody)
	}
	return body, nil
}

// cacheClient is the jwk.Cache's HTTP client: Azure.get behind the
// Get(url) signature httprc calls (which carries no context).
type cacheClient struct{ a *Azure }

func (c cacheClient) Get(uri string) (*http.Response, error) {
	body, err := c.a.get(c.a.life, uri)
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}, nil
}
