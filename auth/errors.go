package auth

import "net/http"

// Error codes of authentication failures, as they appear in problem+json
// bodies.
const (
	CodeMissingToken    = "missing_token"
	CodeInvalidToken    = "invalid_token"
	CodeTokenExpired    = "token_expired"
	CodeUnknownEmployee = "unknown_employee"
	CodeForbidden       = "forbidden"
	// CodeUnavailable: the server cannot check the token now (its keys are
	// not loaded yet); the same code as the handlers' 503s.
	CodeUnavailable = "unavailable"
)

// Error is an authentication or authorization failure with the HTTP status
// and problem code it maps to.
type Error struct {
	Status int
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

func unauthorized(code, detail string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Detail: detail}
}

func invalid(detail string) *Error { return unauthorized(CodeInvalidToken, detail) }

// Forbidden returns a 403 forbidden error.
func Forbidden(detail string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Detail: detail}
}
