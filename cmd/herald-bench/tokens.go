package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"golang.org/x/sync/errgroup"

	"github.com/corp/herald/auth"
)

// authConfig says how the bench authenticates; it travels to workers, so
// each mints its own streams' tokens.
type authConfig struct {
	// Kind is "hs256" (tokens signed with Secret, claim user) or "rs256"
	// (tokens signed by the bench's own OIDC issuer, claim upn).
	Kind   string `json:"kind"`
	Secret string `json:"secret,omitempty"`
	// The RS256 issuer: its private key (PKCS #8 PEM), key ID, iss and aud.
	KeyPEM   string        `json:"key_pem,omitempty"`
	KeyID    string        `json:"kid,omitempty"`
	Issuer   string        `json:"issuer,omitempty"`
	Audience string        `json:"audience,omitempty"`
	TTL      time.Duration `json:"ttl"`
}

// minter signs the bench's tokens.
type minter struct {
	cfg    authConfig
	rsaKey jwk.Key
}

func newMinter(cfg authConfig) (*minter, error) {
	m := &minter{cfg: cfg}
	if cfg.Kind != "rs256" {
		if cfg.Secret == "" {
			return nil, errors.New("hs256 tokens need --jwt-secret")
		}
		return m, nil
	}
	block, _ := pem.Decode([]byte(cfg.KeyPEM))
	if block == nil {
		return nil, errors.New("rs256: no PEM key")
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("rs256: parse key: %w", err)
	}
	if m.rsaKey, err = jwk.FromRaw(raw); err != nil {
		return nil, fmt.Errorf("rs256: key: %w", err)
	}
	if err := m.rsaKey.Set(jwk.KeyIDKey, cfg.KeyID); err != nil {
		return nil, fmt.Errorf("rs256: key id: %w", err)
	}
	return m, nil
}

// employee mints a stream token for employee id: HS256 with `user` (the
// seed systems' cookie format), or an Azure-like RS256 user token with
// `upn` and a `kid` header.
func (m *minter) employee(id int64, now time.Time) (string, error) {
	if m.cfg.Kind != "rs256" {
		return auth.MintHS256([]byte(m.cfg.Secret), auth.TokenSpec{User: username(id), TTL: m.cfg.TTL}, now)
	}
	b := m.azureBuilder(now).Claim("upn", email(id)).Claim("name", fmt.Sprintf("Bench %d", id))
	return m.signRS256(b)
}

// publisher mints the token that publishes and seeds: an HS256 service
// token when there is a secret, else an RS256 app-only token; either holds
// a publisher role and a directory role (seeding PUTs employees).
func (m *minter) publisher(now time.Time) (string, error) {
	if m.cfg.Secret != "" {
		return auth.MintHS256([]byte(m.cfg.Secret), auth.TokenSpec{User: "herald-bench", Roles: []string{"service", "Directory.Write"}, TTL: m.cfg.TTL}, now)
	}
	b := m.azureBuilder(now).Claim("roles", []string{"Notifications.Publish", "Directory.Write"}).Claim("azp", "herald-bench")
	return m.signRS256(b)
}

func (m *minter) azureBuilder(now time.Time) *jwt.Builder {
	return jwt.NewBuilder().Issuer(m.cfg.Issuer).Audience([]string{m.cfg.Audience}).
		IssuedAt(now).NotBefore(now).Expiration(now.Add(m.cfg.TTL)).Claim("ver", "2.0").Claim("tid", benchTenant)
}

func (m *minter) signRS256(b *jwt.Builder) (string, error) {
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("mint rs256 token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, m.rsaKey))
	if err != nil {
		return "", fmt.Errorf("mint rs256 token: %w", err)
	}
	return string(signed), nil
}

// mintTokens mints one token per employee of streams [From, To), on every
// core (an RS256 signature takes about a millisecond), before any stream
// connects, so the connect rate measures the server and not the minting.
func mintTokens(ctx context.Context, wc workerConfig, m *minter) (map[int64]string, error) {
	var ids []int64
	seen := map[int64]bool{}
	for k := wc.From; k < wc.To; k++ {
		if id := wc.Directory.forStream(k); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	tokens := make([]string, len(ids))
	now := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, id := range ids {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			t, err := m.employee(id, now)
			tokens[i] = t
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(ids))
	for i, id := range ids {
		out[id] = tokens[i]
	}
	return out, nil
}

// issuer is a tiny OIDC provider on loopback, laid out like Azure AD's v2
// endpoints ({base}/{tenant}/v2.0/.well-known/openid-configuration and
// {base}/{tenant}/discovery/v2.0/keys), so Herald's Azure verifier can be
// pointed at it with AZURE_ISSUER_BASE_URL. Its keys carry no alg, as
// Azure's do not.
type issuer struct {
	srv       *http.Server
	done      chan struct{}
	url       string // the iss of its tokens
	auth      authConfig
	discovery atomic.Int64 // discovery documents served
	jwks      atomic.Int64 // key sets served
}

const benchTenant = "bench-tenant"

// startIssuer generates an RSA key and serves discovery and keys on addr
// (127.0.0.1:0 for any port) until Close.
func startIssuer(addr, audience string, ttl time.Duration) (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("issuer: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issuer: encode key: %w", err)
	}
	kidBytes := make([]byte, 8)
	_, _ = rand.Read(kidBytes)
	kid := "bench-" + hex.EncodeToString(kidBytes)
	pub, err := jwk.FromRaw(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: public key: %w", err)
	}
	_ = pub.Set(jwk.KeyIDKey, kid)
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	keys, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("issuer: encode keys: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("issuer: listen on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String() + "/" + benchTenant
	is := &issuer{done: make(chan struct{}), url: base + "/v2.0", auth: authConfig{
		Kind: "rs256", KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		KeyID: kid, Issuer: base + "/v2.0", Audience: audience, TTL: ttl,
	}}
	discovery, _ := json.Marshal(map[string]any{
		"issuer": is.url, "jwks_uri": base + "/discovery/v2.0/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"pairwise"},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+benchTenant+"/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(discovery)
	})
	mux.HandleFunc("GET /"+benchTenant+"/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwks.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(keys)
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(is.done)
		_ = is.srv.Serve(ln)
	}()
	return is, nil
}

// Close stops the issuer and waits for its server goroutine.
func (is *issuer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = is.srv.Shutdown(ctx)
	<-is.done
}
