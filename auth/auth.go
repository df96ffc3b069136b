// Package auth turns a request's token into an Identity: it extracts the
// token (Authorization header, else cookie), verifies it with the key chosen
// by configuration (never by the token's header), and resolves the caller to
// an employee of the directory, or to a service that may publish.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/corp/herald/store"
)

// Kind says what a caller is.
type Kind int

// Caller kinds.
const (
	// KindEmployee is a person of the directory: may open streams and read
	// their inbox; may publish with a publisher role.
	KindEmployee Kind = iota + 1
	// KindService is an application: may publish (with a publisher role)
	// and manage the directory (with a directory role); opens no streams.
	KindService
)

// Identity is an authenticated caller.
type Identity struct {
	Kind      Kind
	Employee  store.Employee // set for KindEmployee
	Subject   string         // login or application ID; scopes idempotency keys
	Name      string
	Roles     []string // token roles ∪ directory roles, sorted
	Publisher bool     // holds one of the publisher roles
	Directory bool     // holds one of the directory roles: may change the directory
	ExpiresAt time.Time
	Source    string // SourceBearer or SourceCookie
	Issuer    string // "hs256" or the Azure issuer

	// TokenRoles are the roles the token itself carried, sorted; a session
	// cookie minted for this caller carries these (the directory's are
	// added again when the cookie is used).
	TokenRoles []string
}

// Directory finds employees by login; store.Store satisfies it.
type Directory interface {
	EmployeeByLogin(ctx context.Context, login string) (store.Employee, error)
}

// TokenVerifier verifies tokens of an external issuer (Azure AD).
type TokenVerifier interface {
	// Handles reports whether tokens with this (unverified) iss are its own.
	Handles(iss string) bool
	// Verify checks the token's signature and claims.
	Verify(ctx context.Context, raw string) (Claims, error)
}

// Config configures an Authenticator.
type Config struct {
	// Secret enables HS256 tokens (JWT_SECRET).
	Secret []byte
	// External verifies tokens of another issuer (Azure AD), if set.
	External TokenVerifier
	// Cookie is the cookie read when there is no Authorization header.
	Cookie string
	// PublisherRoles are the roles that may publish.
	PublisherRoles []string
	// DirectoryRoles are the roles that may change the employee directory
	// (DIRECTORY_ROLES). Publishing alone does not: a publisher that could
	// rename an employee to its own login could read that inbox.
	DirectoryRoles []string
	// Directory resolves logins to employees.
	Directory Directory
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// CacheTTL, NegativeTTL and CacheSize tune the login cache (defaults
	// 30s, 5s, 10,000 entries).
	CacheTTL, NegativeTTL time.Duration
	CacheSize             int
	// SessionTTL caps a session's lifetime (DefaultSessionTTL); it never
	// outlives the token it was made from.
	SessionTTL time.Duration
}

// Authenticator authenticates requests. It is safe for concurrent use.
type Authenticator struct {
	cfg        Config
	cache      *loginCache
	sessionKey []byte
	verified   *verifiedCache
}

// New returns an Authenticator; at least one of Secret and External must be set.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Secret) == 0 && cfg.External == nil {
		return nil, errors.New("auth: no token verifier configured (set JWT_SECRET or AZURE_ISSUER_BASE_URL)")
	}
	if cfg.Directory == nil {
		return nil, errors.New("auth: no directory")
	}
	if cfg.Cookie == "" {
		cfg.Cookie = "token"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	return &Authenticator{
		cfg:        cfg,
		cache:      newLoginCache(cfg.Directory, cfg.CacheSize, cfg.CacheTTL, cfg.NegativeTTL, cfg.Now),
		sessionKey: sessionKey(cfg),
		verified:   newVerifiedCache(),
	}, nil
}

// Cookie returns the name of the token cookie.
func (a *Authenticator) Cookie() string { return a.cfg.Cookie }

// Authenticate extracts, verifies and resolves the request's token. Errors
// are *Error for the caller's faults; anything else (the directory failed)
// is the server's.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	raw, source, err := Extract(r, a.cfg.Cookie)
	if err != nil {
		return Identity{}, err
	}
	c, err := a.Verify(r.Context(), raw)
	if err != nil {
		return Identity{}, err
	}
	id, err := a.Resolve(r.Context(), c)
	if err != nil {
		return Identity{}, err
	}
	id.Source = source
	return id, nil
}

// Verify checks a raw token with the verifier its issuer calls for: the
// external one (Azure) when its iss is the configured issuer, else HS256 with
// the secret; without a secret, only session tokens (iss SessionIssuer) are
// HS256, checked with the session key. The unverified iss only picks the
// key; the chosen verifier then checks everything, iss included.
func (a *Authenticator) Verify(ctx context.Context, raw string) (Claims, error) {
	now := a.cfg.Now()
	if c, ok := a.verified.get(raw, now); ok {
		return c, nil
	}
	c, err := a.verify(ctx, raw)
	if err == nil {
		a.verified.put(raw, c, now)
	}
	return c, err
}

// verify is Verify without the cache of verified tokens.
func (a *Authenticator) verify(ctx context.Context, raw string) (Claims, error) {
	p, ok := peek(raw)
	if !ok {
		return Claims{}, invalid("malformed token")
	}
	if a.cfg.External != nil && a.cfg.External.Handles(p.iss) {
		return a.cfg.External.Verify(ctx, raw)
	}
	key := a.cfg.Secret
	if len(key) == 0 && p.iss == SessionIssuer {
		key = a.sessionKey
	}
	if len(key) == 0 || azureAlgs[jwa.SignatureAlgorithm(p.alg)] || p.alg == jwa.EdDSA.String() {
		// An asymmetric token of an issuer other than Azure's: say so,
		// rather than "bad signature".
		return Claims{}, invalid("token issuer (iss) not accepted")
	}
	if p.alg != jwa.HS256.String() {
		// The key is pinned to HS256 anyway; a header that says otherwise
		// (none, HS384, …) is refused rather than ignored (RFC 8725, 3.1).
		return Claims{}, invalid("token algorithm (alg) not accepted: HS256 only")
	}
	return verifyHS256(key, raw, a.cfg.Now)
}

// Resolve turns verified claims into an identity: the employee the login
// names (roles merged with the directory's), else a service when the token
// holds a publisher or directory role, else 403: forbidden for an
// application's own token (a known caller that may do nothing here),
// unknown_employee for a token whose user is not in the directory.
func (a *Authenticator) Resolve(ctx context.Context, c Claims) (Identity, error) {
	id := Identity{Subject: c.Subject, Name: c.Name, ExpiresAt: c.ExpiresAt, Issuer: c.Issuer,
		TokenRoles: store.NormalizeRoles(c.Roles)}
	if c.Login != "" {
		emp, err := a.cache.lookup(ctx, c.Login)
		switch {
		case err == nil:
			id.Kind = KindEmployee
			id.Employee = emp
			id.Roles = store.NormalizeRoles(append(slices.Clone(c.Roles), emp.Roles...))
			id.Publisher, id.Directory = holdsAny(a.cfg.PublisherRoles, id.Roles), holdsAny(a.cfg.DirectoryRoles, id.Roles)
			if id.Name == "" {
				id.Name = emp.Name
			}
			return id, nil
		case !errors.Is(err, store.ErrNotFound):
			return Identity{}, fmt.Errorf("resolve %q: %w", c.Login, err)
		}
	}
	id.Roles = store.NormalizeRoles(c.Roles)
	id.Publisher, id.Directory = holdsAny(a.cfg.PublisherRoles, id.Roles), holdsAny(a.cfg.DirectoryRoles, id.Roles)
	switch {
	case id.Publisher || id.Directory:
		id.Kind = KindService
		return id, nil
	case c.App:
		return Identity{}, Forbidden("this application's token holds no publisher role (PUBLISHER_ROLES) and no directory role (DIRECTORY_ROLES)")
	case c.Login == "":
		return Identity{}, &Error{Status: http.StatusForbidden, Code: CodeUnknownEmployee, Detail: "the token names no user and holds no publisher or directory role"}
	}
	return Identity{}, &Error{Status: http.StatusForbidden, Code: CodeUnknownEmployee, Detail: "no employee matches the token's user"}
}

// holdsAny reports whether roles include one of want.
func holdsAny(want, roles []string) bool {
	for _, r := range roles {
		if slices.Contains(want, r) {
			return true
		}
	}
	return false
}

// Forget drops cached directory lookups, after a directory change.
func (a *Authenticator) Forget() { a.cache.purge() }

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity Middleware stored, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Middleware authenticates every request; on failure it calls onError (which
// writes the response) and stops.
func (a *Authenticator) Middleware(onError func(w http.ResponseWriter, r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := a.Authenticate(r)
			if err != nil {
				onError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}
