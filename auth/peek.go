package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// peeked is what a compact JWT says about itself before anything is
// verified. It only routes the token (which verifier, which key); nothing in
// it is trusted: the chosen verifier checks the signature with the key and
// algorithm the configuration pins, and every claim.
type peeked struct {
	alg, kid, iss string
}

// peek reads a compact JWT's header (alg, kid) and its iss claim. It decodes
// a few hundred bytes instead of a full parse, so a token is fully parsed
// once, by its verifier. ok is false for anything that is not a compact JWS
// with JSON objects in its first two segments.
func peek(raw string) (p peeked, ok bool) {
	header, rest, found := strings.Cut(raw, ".")
	if !found {
		return p, false
	}
	payload, sig, found := strings.Cut(rest, ".")
	if !found || strings.Contains(sig, ".") {
		return p, false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if !decodeSegment(header, &h) {
		return p, false
	}
	var c struct {
		Iss json.RawMessage `json:"iss"`
	}
	if !decodeSegment(payload, &c) {
		return p, false
	}
	p.alg, p.kid = h.Alg, h.Kid
	_ = json.Unmarshal(c.Iss, &p.iss) // a non-string iss routes nowhere
	return p, true
}

// decodeSegment base64url-decodes one JWT segment into the JSON object v.
func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		if b, err = base64.URLEncoding.DecodeString(seg); err != nil {
			return false
		}
	}
	return len(b) > 0 && b[0] == '{' && json.Unmarshal(b, v) == nil
}
