package webpush

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/corp/herald/store"
)

// Timeouts of a request to a push service. A push service that hangs costs
// one of the worker's slots for at most SendTimeout, never a publish or a
// stream.
const (
	SendTimeout    = 30 * time.Second
	connectTimeout = 10 * time.Second
)

// NewHTTPClient returns the client pushes go through: certificates
// verified against the system roots (SSL_CERT_FILE adds a private CA),
// bounded connect, handshake and response times, no redirects (a
// redirect could lead anywhere, PUSH_HOSTS or not).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = connectTimeout
	t.ResponseHeaderTimeout = SendTimeout
	t.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: t,
		Timeout:   SendTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Outcome is what a push service's answer means for the job.
type Outcome int

// The outcomes of a push.
const (
	// Sent: 2xx, the push service took the message; nothing more.
	Sent Outcome = iota
	// Gone: 404 or 410, the subscription expired or was revoked: delete it.
	Gone
	// Retry: 429, 5xx or no answer: try again later (Result.RetryAfter
	// says when the push service asked for).
	Retry
	// Rejected: another 4xx (a bad request, an unknown VAPID key, a
	// payload too large): retrying would not help.
	Rejected
)

// Result is a push service's answer.
type Result struct {
	Outcome Outcome
	Status  int // 0 when no answer came
	// RetryAfter is the Retry-After of a 429 or 5xx, 0 when absent.
	RetryAfter time.Duration
	// Reason names the outcome for metrics and logs: sent, gone, throttled,
	// server_error, network, rejected.
	Reason string
}

// Sender sends encrypted, signed pushes.
type Sender struct {
	Client  *http.Client
	Key     *Key
	Subject string
	// now is the clock (tests).
	now func() time.Time
}

// Send encrypts payload for sub and posts it to sub's endpoint with the
// given TTL. err is set only when nothing was sent (the subscription's
// keys are unusable, or the request could not be built): the answer of a
// push service, or its absence, is in Result.
func (s *Sender) Send(ctx context.Context, sub store.PushSubscription, payload []byte, ttl time.Duration) (Result, error) {
	body, err := Encrypt(payload, sub.P256DH, sub.Auth)
	if err != nil {
		return Result{Outcome: Rejected, Reason: "rejected"}, err
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	authz, err := s.Key.Authorization(sub.Endpoint, s.Subject, now().Add(12*time.Hour))
	if err != nil {
		return Result{Outcome: Rejected, Reason: "rejected"}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Rejected, Reason: "rejected"}, err
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.Itoa(max(int(ttl/time.Second), 0)))
	req.Header.Set("Urgency", "normal")
	resp, err := s.Client.Do(req)
	if err != nil {
		return Result{Outcome: Retry, Reason: "network"}, nil
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	r := Result{Status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		r.Outcome, r.Reason = Sent, "sent"
	case code == http.StatusNotFound || code == http.StatusGone:
		r.Outcome, r.Reason = Gone, "gone"
	case code == http.StatusTooManyRequests:
		r.Outcome, r.Reason = Retry, "throttled"
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now())
	case code >= 500:
		r.Outcome, r.Reason = Retry, "server_error"
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now())
	default:
		r.Outcome, r.Reason = Rejected, "rejected"
	}
	return r, nil
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Gone:
		return "gone"
	case Retry:
		return "retry"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}
