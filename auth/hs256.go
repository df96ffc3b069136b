package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// MinSecretBytes is the HS256 key size RFC 7518 asks for; shorter secrets
// are accepted (the seed systems' env files must keep working) with a warning.
const MinSecretBytes = 32

// verifyHS256 checks a token against the shared secret. The algorithm is
// pinned to HS256: a token that says "none" or RS256 fails here.
func verifyHS256(secret []byte, raw string, now func() time.Time) (Claims, error) {
	tok, err := jwt.ParseString(raw,
		jwt.WithKey(jwa.HS256, secret),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(Skew),
		jwt.WithClock(jwt.ClockFunc(now)),
	)
	if err != nil {
		return Claims{}, validationError(err)
	}
	if tok.Expiration().IsZero() {
		return Claims{}, invalid("token has no exp claim")
	}
	c := Claims{
		Login:     stringClaim(tok, "user"),
		Name:      stringClaim(tok, "name"),
		Roles:     append(listClaim(tok, "rol"), listClaim(tok, "roles")...),
		ExpiresAt: tok.Expiration(),
		Issuer:    "hs256",
	}
	c.Subject = c.Login
	if c.Subject == "" {
		c.Subject = tok.Subject()
	}
	return c, nil
}

// TokenSpec describes an HS256 token to mint.
type TokenSpec struct {
	User  string
	Name  string
	Roles []string
	TTL   time.Duration
	// Issuer, if set, is the iss claim (session tokens: SessionIssuer).
	Issuer string
}

// MintHS256 signs a token in the seed systems' cookie format: claims `user`,
// `name`, `rol` (a string for one role, an array for several), `iat`, `exp`,
// and `iss` when the spec names one.
func MintHS256(secret []byte, s TokenSpec, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: no secret")
	}
	if s.TTL <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	b := jwt.NewBuilder().IssuedAt(now).Expiration(now.Add(s.TTL))
	if s.Issuer != "" {
		b = b.Issuer(s.Issuer)
	}
	if s.User != "" {
		b = b.Claim("user", s.User)
	}
	if s.Name != "" {
		b = b.Claim("name", s.Name)
	}
	switch len(s.Roles) {
	case 0:
	case 1:
		b = b.Claim("rol", s.Roles[0])
	default:
		b = b.Claim("rol", s.Roles)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, secret))
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return string(signed), nil
}
