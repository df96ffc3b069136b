package auth

import (
	"crypto/rand"
	"fmt"
	"time"
)

// Browser sessions (POST /session).
//
// EventSource cannot send an Authorization header, so a browser trades its
// bearer token (Azure or HS256) for a cookie holding a session token: an
// ordinary HS256 token in the seed systems' format (user, name, rol, exp),
// marked with iss SessionIssuer, signed by Herald, and never longer-lived
// than the bearer it came from.
//
// The key: JWT_SECRET when it is set, so every instance sharing the secret
// accepts every instance's sessions. With Azure alone there is no shared
// secret; the key is then random per process, and only tokens marked
// SessionIssuer are checked with it, so enabling sessions does not enable
// HS256 bearer tokens. Several instances behind one load balancer need a
// shared JWT_SECRET: a cookie from another instance (or from before a
// restart) is refused with 401, and the client makes a new session.

// SessionIssuer is the iss of session tokens.
const SessionIssuer = "urn:herald:session"

// DefaultSessionTTL caps a session: a stolen cookie is good for an hour at
// most, and a directory change reaches open sessions within that time.
const DefaultSessionTTL = time.Hour

// sessionKey picks the key that signs session tokens: the secret, else a
// random one.
func sessionKey(cfg Config) []byte {
	if len(cfg.Secret) > 0 {
		return cfg.Secret
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand, Go 1.24+)
	return k
}

// Session is a minted session token and when it expires.
type Session struct {
	Token     string
	ExpiresAt time.Time
}

// IssueSession mints a session token for an employee: user is the
// employee's username (else email), rol the roles the caller's token held,
// and exp the earlier of now + SessionTTL and the caller's own expiry,
// rounded down to the second. Services get 403; a caller whose token has
// (nearly) expired gets 401 token_expired.
func (a *Authenticator) IssueSession(id Identity) (Session, error) {
	if id.Kind != KindEmployee {
		return Session{}, Forbidden("sessions are for employees; a service token gets none")
	}
	now := a.cfg.Now()
	exp := now.Add(a.cfg.SessionTTL)
	if id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	// exp is whole seconds on the wire; rounding down keeps it within the
	// bearer's. Less than a second left is no session.
	exp = exp.Truncate(time.Second)
	if exp.Sub(now) < time.Second {
		return Session{}, unauthorized(CodeTokenExpired, "token expired")
	}
	login := id.Employee.Username
	if login == "" {
		login = id.Employee.Email
	}
	tok, err := MintHS256(a.sessionKey, TokenSpec{
		User: login, Name: id.Name, Roles: id.TokenRoles, TTL: exp.Sub(now), Issuer: SessionIssuer,
	}, now)
	if err != nil {
		return Session{}, fmt.Errorf("issue session: %w", err)
	}
	return Session{Token: tok, ExpiresAt: exp}, nil
}
