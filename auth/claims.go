package auth

import (
	"errors"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Skew is the clock difference tolerated on exp, nbf and iat.
const Skew = 60 * time.Second

// Claims are what Herald reads from a verified token, whatever its kind.
type Claims struct {
	// Login names the user: HS256 `user`; Azure `upn`, else
	// `preferred_username`, else (AzureConfig.TrustEmailClaim) `email`.
	// Empty for app-only tokens.
	Login string
	// Name is the display name (`name`).
	Name string
	// Roles are the token's roles (`rol` and `roles`, string or array).
	Roles []string
	// Subject identifies the caller when there is no login: the application
	// ID of an app-only Azure token; otherwise the login.
	Subject   string
	ExpiresAt time.Time
	// App is true for an application's own token (Azure client
	// credentials): a known caller that is no employee.
	App bool
	// Issuer is "hs256" for Herald-secret tokens (session tokens included),
	// else the external verifier's configured issuer: v1 and v2 Azure tokens
	// of one tenant are the same caller.
	Issuer string
}

// stringClaim returns a string private claim, or "".
func stringClaim(t jwt.Token, name string) string {
	v, ok := t.Get(name)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

// listClaim returns a claim that may be one string or an array of strings.
func listClaim(t jwt.Token, name string) []string {
	v, ok := t.Get(name)
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// validationError maps a jwx validation failure to a problem.
func validationError(err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return unauthorized(CodeTokenExpired, "token expired")
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return invalid("token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return invalid("token audience (aud) not accepted")
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return invalid("token issuer (iss) not accepted")
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return invalid("token issued in the future (iat)")
	}
	return invalid("token signature or format invalid")
}
