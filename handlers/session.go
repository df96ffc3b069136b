package handlers

import (
	"net/http"
	"time"

	"github.com/corp/herald/auth"
)

// createSession serves POST /session: it trades the caller's bearer token
// (Azure or HS256) for a session cookie that EventSource sends by itself.
//
// CSRF: the token must come in the Authorization header, which a cross-site
// form or image cannot send; a request carrying only the cookie is refused,
// so a foreign page cannot use (or prolong) a session. The cookie is
// SameSite=Lax, so browsers leave it off cross-site POSTs to the other
// routes, and their JSON-only bodies stop form posts anyway (415).
func (h *Handler) createSession(w http.ResponseWriter, r *http.Request) error {
	id, _ := auth.FromContext(r.Context())
	if id.Source != auth.SourceBearer {
		return &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeMissingToken,
			Detail: "POST /session takes the token from the Authorization header, not from a cookie"}
	}
	sess, err := h.auth.IssueSession(id)
	if err != nil {
		return err
	}
	// Max-Age 0 would mean "no Max-Age" to net/http; the token inside
	// carries the exact expiry anyway.
	maxAge := max(int(time.Until(sess.ExpiresAt)/time.Second), 1)
	http.SetCookie(w, h.sessionCookie(sess.Token, sess.ExpiresAt, maxAge))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteSession serves DELETE /session: it clears the cookie. It asks for no
// token: clearing a cookie grants nothing, and signing out must work after
// the session has expired.
func (h *Handler) deleteSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, h.sessionCookie("", time.Unix(0, 0), -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// sessionCookie is the token cookie: HttpOnly (scripts never see the
// token), SameSite=Lax, Path=/, and Secure unless Config.InsecureCookie
// (--dev, plain http on localhost). maxAge < 0 deletes it.
func (h *Handler) sessionCookie(value string, expires time.Time, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     h.auth.Cookie(),
		Value:    value,
		Path:     "/",
		Expires:  expires,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !h.insecureCookie,
		SameSite: http.SameSiteLaxMode,
	}
}
