package auth

import (
	"encoding/base64"
	"testing"
)

// TestPeekSegments: peek reads unpadded and padded base64url segments, and
// refuses segments that are neither, or are not JSON objects.
func TestPeekSegments(t *testing.T) {
	header := `{"alg":"HS256","kid":"k1"}` // 26 bytes: padded, it ends in "=="
	payload := `{"iss":"me"}`
	for _, tt := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"unpadded", base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig", true},
		{"padded", base64.URLEncoding.EncodeToString([]byte(header)) + "." + base64.URLEncoding.EncodeToString([]byte(payload)) + ".sig", true},
		{"not base64", "!!!." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig", false},
		{"not an object", base64.RawURLEncoding.EncodeToString([]byte(`["HS256"]`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig", false},
		{"empty header", "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig", false},
		{"four segments", "a.b.c.d", false},
	} {
		p, ok := peek(tt.raw)
		if ok != tt.ok || ok && (p.alg != "HS256" || p.kid != "k1" || p.iss != "me") {
			t.Errorf("%s: peek = %+v, %v; want ok %v (HS256, k1, me)", tt.name, p, ok, tt.ok)
		}
	}
}
