package auth

import (
	"net/http"
	"strings"
)

// MaxTokenBytes bounds a token's size; larger ones are refused unparsed.
// Real Azure AD tokens stay well under it, even with many group claims.
const MaxTokenBytes = 16 << 10

// Token sources.
const (
	SourceBearer = "bearer"
	SourceCookie = "cookie"
)

// Extract takes the token from "Authorization: Bearer …", else from the named
// cookie. A present Authorization header wins even if a cookie is also set,
// and a malformed one is an error rather than a reason to try the cookie.
func Extract(r *http.Request, cookie string) (token, source string, err error) {
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return "", "", invalid("more than one Authorization header")
		}
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", "", invalid("the Authorization header must use the Bearer scheme")
		}
		token = strings.TrimSpace(rest)
		if token == "" {
			return "", "", unauthorized(CodeMissingToken, "the Authorization header carries no token")
		}
		return checkSize(token, SourceBearer)
	}
	if c, err := r.Cookie(cookie); err == nil && c.Value != "" {
		return checkSize(c.Value, SourceCookie)
	}
	return "", "", unauthorized(CodeMissingToken, "no token: send Authorization: Bearer <token> or the "+cookie+" cookie")
}

func checkSize(token, source string) (string, string, error) {
	if len(token) > MaxTokenBytes {
		return "", "", invalid("token too large")
	}
	return token, source, nil
}
