package auth_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/internal/oidctest"
)

// FuzzAuthenticate feeds arbitrary Authorization and Cookie headers through
// extraction, verification (Azure and HS256) and resolution. Whatever comes
// in, the answer is an identity or an *auth.Error with a status and code a
// client can act on; nothing panics; a token is never taken from the cookie
// when an Authorization header is present.
func FuzzAuthenticate(f *testing.F) {
	iss := oidctest.New(f)
	az := newAzure(f, iss, newClock())
	loaded(f, az)
	a := newAuth(f, az, openStore(f))
	azureTok := oidctest.Sign(f, iss.RSA, iss.User("user2@corp.example"))
	ecTok := oidctest.Sign(f, iss.EC, iss.App("app", "Notifications.Publish"))
	hsTok, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user3", Roles: []string{"x", "y"}, TTL: time.Hour}, time.Now())
	parts := strings.Split(azureTok, ".")
	for _, seed := range [][2]string{
		{"Bearer " + azureTok, ""},
		{"Bearer " + ecTok, ""},
		{"", "token=" + hsTok},
		{"bearer  " + hsTok + " ", "a=b; token=" + azureTok},
		{"Bearer " + parts[0] + "." + parts[1] + ".", ""},
		{"Bearer " + parts[0] + ".." + parts[2], ""},
		{"Bearer eyJhbGciOiJub25lIn0.e30.", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"", "token="},
		{"", `token="` + hsTok + `"`},
		{"", "token=" + hsTok + "; token=" + azureTok},
		{"Bearer", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, header, cookie string) {
		r := request()
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		id, err := a.Authenticate(r)
		if err == nil {
			if id.Kind != auth.KindEmployee && id.Kind != auth.KindService {
				t.Fatalf("accepted with kind %d", id.Kind)
			}
			if id.ExpiresAt.IsZero() {
				t.Fatal("accepted without an expiry")
			}
			if header != "" && id.Source != auth.SourceBearer {
				t.Fatalf("a present Authorization header lost to the cookie (source %s)", id.Source)
			}
			return
		}
		var ae *auth.Error
		if !errors.As(err, &ae) {
			t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
		}
		switch {
		case ae.Status == http.StatusUnauthorized && (ae.Code == auth.CodeMissingToken || ae.Code == auth.CodeInvalidToken || ae.Code == auth.CodeTokenExpired):
		case ae.Status == http.StatusForbidden && ae.Code == auth.CodeUnknownEmployee:
		default:
			t.Fatalf("unexpected answer %d %s (%s)", ae.Status, ae.Code, ae.Detail)
		}
	})
}
