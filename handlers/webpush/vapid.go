package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Key is the application server's VAPID key pair (RFC 8292), a P-256 key.
type Key struct {
	priv   *ecdsa.PrivateKey
	public []byte // uncompressed point
}

// GenerateKey returns a new key pair.
func GenerateKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newKey(priv)
}

// ParseKey reads the private key as web-push tools print it: the raw
// 32-byte scalar, base64url without padding (padding is tolerated).
func ParseKey(s string) (*Key, error) {
	raw, err := DecodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("VAPID private key is not base64url: %w", err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("VAPID private key is %d bytes; want the raw 32-byte P-256 key", len(raw))
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("VAPID private key: %w", err)
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	pub, err := priv.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, public: pub}, nil
}

// Private returns the private key in the form ParseKey reads.
func (k *Key) Private() string {
	raw, _ := k.priv.Bytes()
	return b64.EncodeToString(raw)
}

// Public returns the public key, base64url without padding: the
// applicationServerKey a browser subscribes with.
func (k *Key) Public() string { return b64.EncodeToString(k.public) }

// MaxTokenAge is the longest a VAPID token may live (RFC 8292 §2).
const MaxTokenAge = 24 * time.Hour

// Authorization returns the Authorization header of a push to endpoint:
// "vapid t=<JWT>, k=<public key>", the JWT (ES256) naming the endpoint's
// origin as its audience, subject as its sub, expiring at exp.
func (k *Key) Authorization(endpoint, subject string, exp time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("push endpoint is not an absolute URL")
	}
	claims, _ := json.Marshal(struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub,omitempty"`
	}{u.Scheme + "://" + u.Host, exp.Unix(), subject})
	signing := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`)) + "." + b64.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "vapid t=" + signing + "." + b64.EncodeToString(sig) + ", k=" + k.Public(), nil
}
