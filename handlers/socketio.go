package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
)

// socketIO serves /socket.io/, the endpoint of the old systems' Socket.IO
// frontends: Engine.IO handshakes, polls, posts and upgrades are the
// engine's (sse.Hub.ServeSocketIO); this adapter checks the Origin, limits
// new sessions (CONNECT_RATE) and decides each CONNECT with the same
// authentication as every other route.
func (h *Handler) socketIO(w http.ResponseWriter, r *http.Request) {
	if !h.checkOrigin(w, r) {
		return
	}
	err := h.hub.ServeSocketIO(w, r, h.sioAuthenticate)
	var se *sse.SIOError
	switch {
	case err == nil:
	case errors.As(err, &se):
		code := CodeInvalidRequest // also for 413, a body over the limit
		if se.Status == http.StatusServiceUnavailable {
			code = CodeUnavailable
			w.Header().Set("Retry-After", "5")
		}
		h.writeError(w, r, &httpError{status: se.Status, code: code, detail: se.Detail})
	default:
		h.writeError(w, r, err)
	}
}

// limitSIOConnects applies CONNECT_RATE to Socket.IO handshakes only (a
// request without a session id): polls and posts of an open session are
// not new streams.
func (h *Handler) limitSIOConnects(next http.Handler) http.Handler {
	limited := h.limitConnects(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") == "" {
			limited.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// The connect_error messages of the old systems, kept word for word: their
// frontends match on them. The Azure system's apply when the client sends
// an auth object or an Authorization header; the cookie system's when it
// sends neither (io(url, { withCredentials: true })).
const (
	sioNoToken      = "Autenticación requerida: No se proporcionó token."
	sioBadToken     = "Autenticación fallida: Token de Azure inválido."
	sioUnknownUser  = "Usuario no encontrado en el sistema local."
	sioNoCookie     = "No autenticado"
	sioNoCookieTok  = "Token no proporcionado"
	sioBadCookieTok = "Token inválido"
)

// sioAuth is the auth object a Socket.IO client sends with its CONNECT.
type sioAuth struct {
	Token       *string         `json:"token"`
	LastEventID json.RawMessage `json:"lastEventId"`
}

// sioAuthenticate decides a Socket.IO CONNECT: the token is auth.token,
// else the handshake's Authorization header, else its token cookie, and
// is checked like everywhere else; auth.lastEventId resumes.
func (h *Handler) sioAuthenticate(ctx context.Context, c sse.SIOConnect) (sse.Params, error) {
	var a sioAuth
	if c.Auth != nil {
		if err := json.Unmarshal(c.Auth, &a); err != nil {
			return sse.Params{}, &sse.SIORefusal{Message: "auth: " + err.Error(), Code: CodeInvalidRequest}
		}
	}
	cookieStyle := c.Auth == nil && c.Header.Get("Authorization") == ""
	hd := c.Header.Clone()
	if a.Token != nil && *a.Token != "" {
		hd.Set("Authorization", "Bearer "+*a.Token)
	}
	req := (&http.Request{Header: hd}).WithContext(ctx)
	id, err := h.auth.Authenticate(req)
	if err == nil && id.Kind == auth.KindEmployee && !id.ExpiresAt.After(time.Now()) {
		err = &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeTokenExpired, Detail: "token expired"}
	}
	if err != nil {
		return sse.Params{}, h.sioRefusal(err, cookieStyle, hd)
	}
	if id.Kind != auth.KindEmployee {
		return sse.Params{}, &sse.SIORefusal{Message: sioUnknownUser, Code: auth.CodeForbidden}
	}
	after, resuming, err := sioResumePoint(a.LastEventID)
	if err != nil {
		return sse.Params{}, err
	}
	return sse.Params{Employee: id.Employee.ID, Roles: id.Roles, ExpiresAt: id.ExpiresAt, After: after, Resuming: resuming}, nil
}

// sioRefusal maps an authentication failure to its connect_error.
func (h *Handler) sioRefusal(err error, cookieStyle bool, hd http.Header) error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		h.log.Error("socket.io connect: cannot authenticate", "err", err)
		return &sse.SIORefusal{Message: "Servicio no disponible; reintente.", Code: CodeUnavailable}
	}
	msg := ""
	switch ae.Code {
	case auth.CodeMissingToken:
		msg = sioNoToken
		if cookieStyle {
			msg = sioNoCookie
			if hd.Get("Cookie") != "" {
				msg = sioNoCookieTok
			}
		}
	case auth.CodeInvalidToken, auth.CodeTokenExpired:
		msg = sioBadToken
		if cookieStyle {
			msg = sioBadCookieTok
		}
	case auth.CodeUnknownEmployee, auth.CodeForbidden:
		msg = sioUnknownUser
	default: // unavailable: the keys are not loaded yet
		msg = "Servicio no disponible; reintente."
	}
	return &sse.SIORefusal{Message: msg, Code: ae.Code}
}

// sioResumePoint reads auth.lastEventId: an event id as a string or a
// number; absent, null or "" is a fresh connect.
func sioResumePoint(raw json.RawMessage) (after int64, ok bool, err error) {
	v := strings.TrimSpace(string(raw))
	if v == "" || v == "null" || v == `""` {
		return 0, false, nil
	}
	if uq, err := strconv.Unquote(v); err == nil {
		v = strings.TrimSpace(uq)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, &sse.SIORefusal{Message: "auth.lastEventId must be an event id: a non-negative integer", Code: CodeInvalidRequest}
	}
	return n, true, nil
}
