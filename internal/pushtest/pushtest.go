// Package pushtest is a fake Web Push service for tests: an HTTPS server on
// 127.0.0.1 with a certificate from a test CA (its PEM in CAFile, for
// SSL_CERT_FILE), whose subscribers hold real P-256 keys. It checks each
// push as a browser's push service and the browser would: the VAPID JWT
// (ES256 signature with the k key, audience, expiry, subject) and the
// aes128gcm body, decrypted with the subscriber's private key.
package pushtest

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/handlers/webpush"
)

// Answer is how the service answers one push to a subscriber.
type Answer struct {
	Status     int
	RetryAfter string
	// Hold keeps the request open until the client gives up (a hung push
	// service).
	Hold bool
}

// Push is one request the service received.
type Push struct {
	Subscriber string
	Status     int // what the service answered
	Payload    []byte
	TTL        int
	Claims     Claims
	// Err says what was wrong with the request (bad JWT, undecryptable
	// body); the service answered 400.
	Err error
	At  time.Time
}

// Claims are a VAPID JWT's claims.
type Claims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// Service is the fake push service.
type Service struct {
	// URL is its base URL, https://127.0.0.1:PORT.
	URL string
	// CAFile is the PEM of the CA that signed its certificate.
	CAFile string

	srv *httptest.Server
	tb  testing.TB

	mu      sync.Mutex // guards the fields below
	subs    map[string]*subscriber
	pushes  []Push
	held    int // requests held open now
	changed chan struct{}
}

type subscriber struct {
	priv    *ecdh.PrivateKey
	auth    []byte
	answers []Answer
}

// Start starts the service; it stops at the end of the test.
func Start(tb testing.TB) *Service {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pushtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caFile := filepath.Join(tb.TempDir(), "pushtest-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := &Service{CAFile: caFile, tb: tb, subs: map[string]*subscriber{}, changed: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	s.srv.StartTLS()
	tb.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	s.URL = s.srv.URL
	return s
}

// Subscribe makes a subscriber with fresh keys, answering its pushes with
// answers in turn, then 201. It returns the subscription as a browser's
// PushSubscription.toJSON() gives it.
func (s *Service) Subscribe(name string, answers ...Answer) map[string]any {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		s.tb.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	s.mu.Lock()
	s.subs[name] = &subscriber{priv: priv, auth: auth, answers: answers}
	s.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]any{
		"endpoint":       s.Endpoint(name),
		"expirationTime": nil,
		"keys":           map[string]any{"p256dh": b64(priv.PublicKey().Bytes()), "auth": b64(auth)},
	}
}

// Endpoint is a subscriber's push URL.
func (s *Service) Endpoint(name string) string { return s.URL + "/push/" + name }

// Pushes returns what the subscriber was sent so far (every attempt).
func (s *Service) Pushes(name string) []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Push
	for _, p := range s.pushes {
		if p.Subscriber == name {
			out = append(out, p)
		}
	}
	return out
}

// All returns every push so far.
func (s *Service) All() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// Wait waits until cond holds for the pushes so far, or fails the test
// after timeout.
func (s *Service) Wait(tb testing.TB, what string, timeout time.Duration, cond func(all []Push) bool) []Push {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		all := append([]Push(nil), s.pushes...)
		changed := s.changed
		s.mu.Unlock()
		if cond(all) {
			return all
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("push service: %s: not after %s; pushes: %s", what, timeout, Describe(all))
		}
	}
}

// Held returns how many requests are held open now.
func (s *Service) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Describe lists pushes for failure messages.
func Describe(ps []Push) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  %s %d %s", p.Subscriber, p.Status, p.Payload)
		if p.Err != nil {
			fmt.Fprintf(&b, " (%v)", p.Err)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func (s *Service) record(p Push) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.At = time.Now()
	s.pushes = append(s.pushes, p)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/push/")
	s.mu.Lock()
	sub := s.subs[name]
	var ans Answer
	if sub != nil && len(sub.answers) > 0 {
		ans, sub.answers = sub.answers[0], sub.answers[1:]
	}
	s.mu.Unlock()
	if !ok || sub == nil || r.Method != http.MethodPost {
		s.record(Push{Subscriber: name, Status: http.StatusNotFound, Err: errors.New("no such subscriber")})
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	p := Push{Subscriber: name}
	p.TTL, _ = strconv.Atoi(r.Header.Get("TTL"))
	p.Claims, p.Err = s.checkVAPID(r.Header.Get("Authorization"))
	if p.Err == nil {
		p.Err = checkHeaders(r, body)
	}
	if p.Err == nil {
		p.Payload, p.Err = webpush.Decrypt(body, sub.priv, sub.auth)
	}
	switch {
	case p.Err != nil:
		p.Status = http.StatusBadRequest
	case ans.Hold:
		s.mu.Lock()
		s.held++
		s.mu.Unlock()
		<-r.Context().Done() // until the client gives up
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
		p.Status = 0
		p.Err = errors.New("held until the client gave up")
		s.record(p)
		return
	case ans.Status != 0:
		p.Status = ans.Status
	default:
		p.Status = http.StatusCreated
	}
	s.record(p)
	if ans.RetryAfter != "" {
		w.Header().Set("Retry-After", ans.RetryAfter)
	}
	if p.Status == http.StatusCreated {
		w.Header().Set("Location", s.URL+"/message/"+strconv.Itoa(len(s.All())))
	}
	w.WriteHeader(p.Status)
	if p.Err != nil {
		io.WriteString(w, p.Err.Error())
	}
}

func checkHeaders(r *http.Request, body []byte) error {
	switch {
	case r.Header.Get("Content-Encoding") != "aes128gcm":
		return fmt.Errorf("Content-Encoding %q; want aes128gcm", r.Header.Get("Content-Encoding"))
	case r.Header.Get("TTL") == "":
		return errors.New("no TTL header")
	case len(body) > 4096:
		return fmt.Errorf("body of %d bytes; push services take 4096 at most", len(body))
	}
	if ttl, err := strconv.Atoi(r.Header.Get("TTL")); err != nil || ttl < 0 || ttl > 86400 {
		return fmt.Errorf("TTL %q; want 0..86400", r.Header.Get("TTL"))
	}
	return nil
}

// checkVAPID checks "vapid t=JWT, k=KEY" as RFC 8292 says.
func (s *Service) checkVAPID(h string) (Claims, error) {
	var c Claims
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return c, fmt.Errorf("Authorization %q is not vapid", h)
	}
	var tok, key string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			tok = v
		case "k":
			key = v
		}
	}
	raw, err := webpush.DecodeKey(key)
	if err != nil {
		return c, fmt.Errorf("k: %v", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return c, fmt.Errorf("k is not a P-256 point: %v", err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, errors.New("t is not a JWS")
	}
	var header struct{ Alg, Typ string }
	hb, _ := webpush.DecodeKey(parts[0])
	if json.Unmarshal(hb, &header) != nil || header.Alg != "ES256" {
		return c, fmt.Errorf("JWT header %s; want alg ES256", hb)
	}
	sig, _ := webpush.DecodeKey(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return c, errors.New("JWT signature does not verify with k")
	}
	cb, _ := webpush.DecodeKey(parts[1])
	if err := json.Unmarshal(cb, &c); err != nil {
		return c, fmt.Errorf("JWT claims: %v", err)
	}
	now := time.Now().Unix()
	switch {
	case c.Aud != s.URL:
		return c, fmt.Errorf("aud %q; want %q", c.Aud, s.URL)
	case c.Exp <= now || c.Exp > now+24*3600:
		return c, fmt.Errorf("exp %d is not within 24 h from now (%d)", c.Exp, now)
	case !strings.HasPrefix(c.Sub, "mailto:") && !strings.HasPrefix(c.Sub, "https:"):
		return c, fmt.Errorf("sub %q; want a mailto: or https: URL", c.Sub)
	}
	return c, nil
}
