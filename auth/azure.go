package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Defaults of AzureConfig.
const (
	// DefaultKeyRefresh is how often the key set is refreshed in the
	// background. Azure announces new keys well before it signs with them,
	// and an unknown kid triggers a refresh of its own.
	DefaultKeyRefresh = time.Hour
	// DefaultKidRefresh is the least time between two refreshes triggered by
	// unknown kids, so that a flood of tokens with made-up kids costs at most
	// one key fetch per interval.
	DefaultKidRefresh = 30 * time.Second
	// DefaultFetchTimeout bounds each discovery or key set request.
	DefaultFetchTimeout = 10 * time.Second
)

// v1Issuer is the issuer of Azure AD v1 access tokens; %s is the tenant ID.
const v1Issuer = "https://sts.windows.net/%s/"

// azureAlgs are the algorithms accepted for Azure tokens: asymmetric only,
// so a token can never pick a shared-secret algorithm or "none".
var azureAlgs = map[jwa.SignatureAlgorithm]bool{
	jwa.RS256: true, jwa.RS384: true, jwa.RS512: true,
	jwa.PS256: true, jwa.PS384: true, jwa.PS512: true,
	jwa.ES256: true, jwa.ES384: true, jwa.ES512: true,
}

// AzureConfig configures the Azure AD (Entra ID) token verifier.
type AzureConfig struct {
	// Issuer is AZURE_ISSUER_BASE_URL, the tenant's v2 issuer:
	// https://login.microsoftonline.com/{tenant}/v2.0.
	Issuer string
	// JWKSURI overrides the key set URL that OIDC discovery would find.
	JWKSURI string
	// Audiences are the accepted aud values (App ID URI and/or client ID);
	// a token must name at least one.
	Audiences []string
	// TrustEmailClaim accepts the email claim as the login when upn and
	// preferred_username are absent (AZURE_TRUST_EMAIL_CLAIM). Off by
	// default: a tenant's users can often set their own email, and so
	// could name someone else.
	TrustEmailClaim bool
	// HTTPClient fetches discovery and keys (default: DefaultFetchTimeout).
	HTTPClient *http.Client
	// KeyRefresh is the background refresh interval (DefaultKeyRefresh).
	KeyRefresh time.Duration
	// KidRefresh is the least time between refreshes triggered by unknown
	// kids (DefaultKidRefresh).
	KidRefresh time.Duration
	// RetryMin and RetryMax bound the backoff while the first load fails
	// (defaults 1s and 30s).
	RetryMin, RetryMax time.Duration
	// Logger receives key loading problems (never tokens).
	Logger *slog.Logger
	// Now is the clock for token times and the kid refresh limit (time.Now).
	Now func() time.Time
}

// Azure verifies Azure AD access tokens against the tenant's keys. It is an
// auth.TokenVerifier. Keys load in the background from the start (see
// NewAzure); Close stops that work.
type Azure struct {
	cfg       AzureConfig
	client    *http.Client
	log       *slog.Logger
	audiences map[string]bool
	// issuers are the accepted iss values: the configured issuer, its v1
	// form, and what discovery names (the tenant ID form, when the
	// configuration uses a domain name). Read on every request.
	issuers atomic.Pointer[[]string]

	// keys is the newest usable key set, swapped whole: verification never
	// waits for a fetch in progress (see jwks.go).
	keys   atomic.Pointer[keySet]
	loaded chan struct{} // closed once the first key set is in
	cache  *jwk.Cache

	// life bounds every background fetch; stop cancels it (Close). It is the
	// verifier's lifetime, not a request's.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup // the loader and forced refreshes
	once sync.Once

	mu         sync.Mutex // guards the fields below
	jwksURI    string
	lastForced time.Time
	refreshing *refreshCall
}

var _ TokenVerifier = (*Azure)(nil)

// NewAzure checks cfg and starts loading the keys in the background:
// discovery (unless JWKSURI is set), then the key set, retried with backoff
// until it works. Until then Ready reports an error and Azure tokens are
// answered 503; other verifiers (HS256) work meanwhile. Call Close to stop.
func NewAzure(cfg AzureConfig) (*Azure, error) {
	issuer := strings.TrimSuffix(strings.TrimSpace(cfg.Issuer), "/")
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("azure: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if t, ok := tenantOf(issuer); ok && isMultiTenant(t) {
		return nil, fmt.Errorf("azure: issuer %q names no tenant; use your tenant ID (Herald accepts one tenant's tokens)", cfg.Issuer)
	}
	cfg.Issuer = issuer
	if cfg.JWKSURI != "" {
		if _, err := checkFetchURL(cfg.JWKSURI, issuer); err != nil {
			return nil, fmt.Errorf("azure: jwks uri: %w", err)
		}
	}
	auds := make(map[string]bool)
	for _, a := range cfg.Audiences {
		if a = strings.TrimSpace(a); a != "" {
			auds[a] = true
		}
	}
	if len(auds) == 0 {
		return nil, errors.New("azure: no audience configured (AZURE_AUDIENCE)")
	}
	setDefault(&cfg.KeyRefresh, DefaultKeyRefresh)
	setDefault(&cfg.KidRefresh, DefaultKidRefresh)
	setDefault(&cfg.RetryMin, time.Second)
	setDefault(&cfg.RetryMax, 30*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	a := &Azure{
		cfg: cfg, client: client, log: cfg.Logger, audiences: auds,
		loaded: make(chan struct{}), jwksURI: cfg.JWKSURI,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	// The configured issuer with and without a trailing slash (Azure's v2
	// iss has none; an env file may add one).
	a.setIssuers(issuer, issuer+"/")
	a.life, a.stop = context.WithCancel(context.Background())
	a.cache = newKeyCache(a)
	a.wg.Add(1)
	go a.load()
	return a, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Close stops background key loading and refreshing and waits for the
// fetches it started. Verification keeps using the keys already loaded.
func (a *Azure) Close() {
	a.once.Do(func() {
		a.mu.Lock()
		a.stop() // under mu: no forced refresh starts after this
		a.mu.Unlock()
		a.wg.Wait()
	})
}

// Issuer returns the configured issuer, which identities of Azure tokens
// carry (v1 and v2 tokens of one tenant are the same caller).
func (a *Azure) Issuer() string { return a.cfg.Issuer }

// Handles reports whether iss is one of the tenant's issuers.
func (a *Azure) Handles(iss string) bool {
	return slices.Contains(*a.issuers.Load(), iss)
}

// setIssuers accepts each issuer and its v1 form, on top of those accepted
// already.
func (a *Azure) setIssuers(issuers ...string) {
	var list []string
	if cur := a.issuers.Load(); cur != nil {
		list = slices.Clone(*cur)
	}
	for _, iss := range issuers {
		list = append(list, iss)
		if t, ok := tenantOf(iss); ok && !isMultiTenant(t) {
			list = append(list, fmt.Sprintf(v1Issuer, t))
		}
	}
	slices.Sort(list)
	list = slices.Compact(list)
	a.issuers.Store(&list)
}

// tenantOf returns {tenant} of a v2 issuer URL …/{tenant}/v2.0.
func tenantOf(issuer string) (string, bool) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[1] != "v2.0" || parts[0] == "" {
		return "", false
	}
	return parts[0], true
}

func isMultiTenant(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers", "{tenantid}":
		return true
	}
	return false
}

// Verify checks an Azure token: a compact JWS with a kid, an asymmetric
// algorithm that fits the key found under that kid, a valid signature, then
// iss, aud, exp (required) and nbf with Skew.
func (a *Azure) Verify(ctx context.Context, raw string) (Claims, error) {
	// The header only picks the key; jwt.Parse below verifies with that key
	// and this algorithm, which must also be the header's.
	p, ok := peek(raw)
	if !ok {
		return Claims{}, invalid("malformed token")
	}
	alg := jwa.SignatureAlgorithm(p.alg)
	if !azureAlgs[alg] {
		return Claims{}, invalid(fmt.Sprintf("signing algorithm %q is not accepted for Azure AD tokens", alg.String()))
	}
	kid := p.kid
	if kid == "" {
		return Claims{}, invalid("token has no key ID (kid)")
	}
	key, err := a.key(ctx, kid)
	if err != nil {
		return Claims{}, err
	}
	if !keyFits(key, alg) {
		return Claims{}, invalid("the signing key does not fit the token's algorithm")
	}
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(Skew),
		jwt.WithClock(jwt.ClockFunc(a.cfg.Now)),
	)
	if err != nil {
		return Claims{}, validationError(err)
	}
	if tok.Expiration().IsZero() {
		return Claims{}, invalid("token has no exp claim")
	}
	if !a.Handles(tok.Issuer()) {
		return Claims{}, invalid("token issuer (iss) not accepted")
	}
	if !slices.ContainsFunc(tok.Audience(), func(aud string) bool { return a.audiences[aud] }) {
		return Claims{}, invalid("token audience (aud) not accepted")
	}
	return azureClaims(tok, a.cfg.Issuer, a.cfg.TrustEmailClaim)
}

// keyFits reports whether key can verify alg: RSA keys for RS*/PS*, EC keys
// on the algorithm's curve for ES*, and, when the key names an alg, only
// that one.
func keyFits(key jwk.Key, alg jwa.SignatureAlgorithm) bool {
	if ka := key.Algorithm().String(); ka != "" && ka != alg.String() {
		return false
	}
	switch k := key.(type) {
	case jwk.RSAPublicKey:
		return strings.HasPrefix(alg.String(), "RS") || strings.HasPrefix(alg.String(), "PS")
	case jwk.ECDSAPublicKey:
		want := map[jwa.SignatureAlgorithm]elliptic.Curve{jwa.ES256: elliptic.P256(), jwa.ES384: elliptic.P384(), jwa.ES512: elliptic.P521()}[alg]
		var pub ecdsa.PublicKey
		return want != nil && k.Raw(&pub) == nil && pub.Curve == want
	}
	return false
}

// azureClaims reads a verified Azure token. App-only tokens (client
// credentials) have idtyp "app" when the API asks for that optional claim;
// without it they are the tokens with no scp, no user claim and oid == sub.
// Their subject is the application ID (azp in v2, appid in v1). A user
// token must name its user: upn, else preferred_username, else (only with
// trustEmail) email.
func azureClaims(tok jwt.Token, issuer string, trustEmail bool) (Claims, error) {
	login := firstNonEmpty(stringClaim(tok, "upn"), stringClaim(tok, "preferred_username"))
	email := stringClaim(tok, "email")
	if trustEmail {
		login = firstNonEmpty(login, email)
	}
	idtyp := strings.ToLower(stringClaim(tok, "idtyp"))
	oid := stringClaim(tok, "oid")
	app := idtyp == "app" ||
		(idtyp == "" && stringClaim(tok, "scp") == "" && login == "" && email == "" && (oid == "" || oid == tok.Subject()))
	c := Claims{
		Name:      stringClaim(tok, "name"),
		Roles:     listClaim(tok, "roles"),
		ExpiresAt: tok.Expiration(),
		Issuer:    issuer,
	}
	if app {
		c.Subject = firstNonEmpty(stringClaim(tok, "azp"), stringClaim(tok, "appid"), tok.Subject())
		if c.Subject == "" {
			return Claims{}, invalid("app-only token names no application (azp, appid)")
		}
		c.App = true
		return c, nil
	}
	if login == "" {
		detail := "the token names no user (upn or preferred_username)"
		if email != "" {
			detail += "; its email claim is not trusted unless AZURE_TRUST_EMAIL_CLAIM=true"
		}
		return Claims{}, &Error{Status: http.StatusForbidden, Code: CodeUnknownEmployee, Detail: detail}
	}
	c.Login, c.Subject = login, login
	return c, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
