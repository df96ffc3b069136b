package handlers

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/corp/herald/auth"
)

// Limits are Herald's rate limits (SPEC, "Limits and serving"). Each is a
// number of events per second, with a burst of twice that; 0 turns it off.
// A request over a limit is answered 429 rate_limited with Retry-After.
type Limits struct {
	// Publish limits POST /notifications per publisher identity: an
	// employee, or a service (PUBLISH_RATE).
	Publish float64
	// Connect limits stream opens per client IP, over every stream
	// transport (CONNECT_RATE). IPv6 clients count per /64.
	Connect float64
	// State limits state changes and preference writes per employee
	// (STATE_RATE).
	State float64
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when telling the client IP (TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// Clock tells the limiters the time; nil is time.Now. Tests freeze it,
	// so a slow machine refills no bucket between two requests.
	Clock func() time.Time
}

// Limit names, as in herald_rate_limited_total and the problems' details.
const (
	limitPublish = "publish"
	limitConnect = "connect"
	limitState   = "state"
)

// limiters holds one keyed limiter per limit (nil when off).
type limiters struct {
	publish, connect, state *keyedLimiter
	trusted                 []netip.Prefix
}

func newLimiters(l Limits) limiters {
	return limiters{
		publish: newKeyedLimiter(l.Publish, l.Clock),
		connect: newKeyedLimiter(l.Connect, l.Clock),
		state:   newKeyedLimiter(l.State, l.Clock),
		trusted: l.TrustedProxies,
	}
}

// keyedLimiter is a token bucket per key. Buckets that are full again are
// forgotten (a new one is the same), so memory follows the keys active in
// the last minute; past maxKeys active keys, some are forgotten early (they
// may burst again).
type keyedLimiter struct {
	perSecond float64
	limit     rate.Limit
	burst     int
	now       func() time.Time

	mu        sync.Mutex // guards buckets and swept
	buckets   map[string]*rate.Limiter
	swept     time.Time
	sweepSize int
}

// maxKeys bounds the buckets held at once.
const maxKeys = 100_000

func newKeyedLimiter(perSecond float64, now func() time.Time) *keyedLimiter {
	if perSecond <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &keyedLimiter{
		now:       now,
		perSecond: perSecond,
		limit:     rate.Limit(perSecond),
		burst:     max(1, int(math.Ceil(2*perSecond))),
		buckets:   make(map[string]*rate.Limiter),
		swept:     now(),
		sweepSize: 1024,
	}
}

// allow takes a token of key's bucket; without one it reports how long
// until there is one.
func (l *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		l.sweepLocked(now)
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweepLocked forgets full buckets once a minute, or when the map has
// doubled since the last sweep; at maxKeys it also forgets a tenth of the
// rest. l.mu must be held.
func (l *keyedLimiter) sweepLocked(now time.Time) {
	if now.Sub(l.swept) < time.Minute && len(l.buckets) < l.sweepSize && len(l.buckets) < maxKeys {
		return
	}
	full := float64(l.burst)
	for k, b := range l.buckets {
		if b.TokensAt(now) >= full {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxKeys*9/10 {
			break
		}
		delete(l.buckets, k)
	}
	l.swept, l.sweepSize = now, max(1024, 2*len(l.buckets))
}

// limited answers 429 rate_limited with Retry-After in whole seconds.
func limited(name string, perSecond float64, per string, wait time.Duration) *httpError {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &httpError{
		status: http.StatusTooManyRequests, code: CodeRateLimited,
		detail: fmt.Sprintf("too many %s: at most %s per second per %s; retry in %d s", name, formatRate(perSecond), per, secs),
		header: http.Header{"Retry-After": {strconv.Itoa(secs)}},
	}
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// limitConnects limits stream opens per client IP (CONNECT_RATE). Every
// stream transport's route uses it (SSE, WebSocket, and Socket.IO's), ahead
// of authentication, so a flood costs no token checks.
func (h *Handler) limitConnects(next http.Handler) http.Handler {
	l := h.limits.connect
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.allow(h.clientKey(r), l.now()); !ok {
			h.metrics.rateLimited.WithLabelValues(limitConnect).Inc()
			h.writeError(w, r, limited("stream opens", l.perSecond, "client address (CONNECT_RATE)", wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitPublishes limits publishes per publisher identity (PUBLISH_RATE);
// it runs after authentication.
func (h *Handler) limitPublishes(next http.Handler) http.Handler {
	return h.limitCaller(next, h.limits.publish, limitPublish, "publishes", "publisher (PUBLISH_RATE)")
}

// limitState limits state changes and preference writes per employee
// (STATE_RATE): every route that changes an inbox's state or the
// preferences uses it, after authentication.
func (h *Handler) limitState(next http.Handler) http.Handler {
	return h.limitCaller(next, h.limits.state, limitState, "state changes", "employee (STATE_RATE)")
}

// limitCaller limits requests per authenticated caller (publisherKey: an
// employee by ID, a service by its subject).
func (h *Handler) limitCaller(next http.Handler, l *keyedLimiter, name, what, per string) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		if ok, wait := l.allow(publisherKey(id), l.now()); !ok {
			h.metrics.rateLimited.WithLabelValues(name).Inc()
			h.writeError(w, r, limited(what, l.perSecond, per, wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientKey is the rate-limit key of the request's client: its IP (IPv6
// by /64: one host usually holds a whole /64), or the raw remote address
// when that is no IP.
func (h *Handler) clientKey(r *http.Request) string {
	ip, ok := clientIP(r, h.limits.trusted)
	if !ok {
		return r.RemoteAddr
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// clientIP returns the address of the request's client: the socket's peer,
// or, when the peer is a trusted proxy, the X-Forwarded-For entry added by
// the nearest trusted proxy, walking from the right past further trusted
// proxies. Entries left of the first untrusted one were written by the
// client and could say anything.
func clientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ip, ok := parseHop(r.RemoteAddr)
	if !ok || !isTrusted(ip, trusted) {
		return ip, ok
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			return ip, true // garbage where a trusted proxy should have written: the last known hop
		}
		ip = hop
		if !isTrusted(ip, trusted) {
			break
		}
	}
	return ip, true
}

// parseHop reads an address, with or without a port.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err == nil
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
