package auth_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/internal/oidctest"
)

// payload decodes a token's claims without verifying it.
func payload(t testing.TB, tok string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseString(tok, jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parsed.AsMap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSessionFromAzure: an Azure bearer becomes a session token that
// resolves to the same employee, carries only the bearer's roles, and never
// outlives the bearer; without JWT_SECRET it is good on this instance only
// and does not open the door to other HS256 tokens.
func TestSessionFromAzure(t *testing.T) {
	iss := oidctest.New(t)
	az := newAzure(t, iss, newClock())
	loaded(t, az)
	st := openStore(t)
	noSecret := func(c *auth.Config) { c.Secret = nil }
	a := newAuth(t, az, st, noSecret)
	now := time.Now()
	bearerExp := now.Add(20 * time.Minute).Truncate(time.Second)
	tok := oidctest.Sign(t, iss.RSA, oidctest.With(iss.User("USER2@corp.example", "Notifications.Publish"), "exp", bearerExp.Unix()))
	id, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := a.IssueSession(id)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.ExpiresAt.Equal(bearerExp) {
		t.Fatalf("session expires %v, want the bearer's exp %v", sess.ExpiresAt, bearerExp)
	}
	claims := payload(t, sess.Token)
	if claims["iss"] != auth.SessionIssuer || claims["user"] != "user2" || claims["rol"] != "Notifications.Publish" {
		t.Fatalf("session claims %v", claims)
	}
	got, err := a.Authenticate(request("Cookie", "token="+sess.Token))
	if err != nil {
		t.Fatalf("the session cookie: %v", err)
	}
	if got.Kind != auth.KindEmployee || got.Employee.ID != 2 || got.Source != auth.SourceCookie || !got.ExpiresAt.Equal(bearerExp) {
		t.Fatalf("session identity %+v", got)
	}
	if !slices.Equal(got.TokenRoles, []string{"Notifications.Publish"}) || !got.Publisher {
		t.Fatalf("session roles %v (token %v)", got.Roles, got.TokenRoles)
	}

	// Another process has another key.
	other := newAuth(t, az, st, noSecret)
	_, err = other.Authenticate(request("Cookie", "token="+sess.Token))
	if ae := authError(t, err); ae.Status != 401 || ae.Code != "invalid_token" {
		t.Fatalf("another instance's session: %d %s", ae.Status, ae.Code)
	}
	// Sessions do not enable HS256 bearers, with or without the session iss.
	for _, spec := range []auth.TokenSpec{
		{User: "user1", TTL: time.Hour},
		{User: "user1", TTL: time.Hour, Issuer: auth.SessionIssuer},
	} {
		forged, _ := auth.MintHS256([]byte("guessed-guessed-guessed-guessed!"), spec, now)
		_, err = a.Authenticate(bearer(forged))
		if ae := authError(t, err); ae.Status != 401 || ae.Code != "invalid_token" {
			t.Fatalf("forged HS256 token %+v: %d %s", spec, ae.Status, ae.Code)
		}
	}
}

// TestSessionRules: the cap, services, nearly expired bearers, and the key
// shared through JWT_SECRET.
func TestSessionRules(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	withClock := func(c *auth.Config) { c.Now = clk.Now; c.SessionTTL = 10 * time.Minute }
	a := newAuth(t, nil, st, withClock)
	mint := func(spec auth.TokenSpec) auth.Identity {
		t.Helper()
		tok, err := auth.MintHS256([]byte(testSecret), spec, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		id, err := a.Authenticate(bearer(tok))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	sess, err := a.IssueSession(mint(auth.TokenSpec{User: "user3", TTL: 12 * time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(10 * time.Minute).Truncate(time.Second); !sess.ExpiresAt.Equal(want) {
		t.Fatalf("session expires %v, want the cap %v", sess.ExpiresAt, want)
	}
	// Any instance with the same JWT_SECRET accepts it.
	if id, err := newAuth(t, nil, st).Authenticate(request("Cookie", "token="+sess.Token)); err != nil || id.Employee.ID != 3 {
		t.Fatalf("session on another instance sharing JWT_SECRET: %+v %v", id, err)
	}

	_, err = a.IssueSession(mint(auth.TokenSpec{User: "billing", Roles: []string{"service"}, TTL: time.Hour}))
	if ae := authError(t, err); ae.Status != 403 || ae.Code != "forbidden" {
		t.Fatalf("service: %d %s", ae.Status, ae.Code)
	}
	id := mint(auth.TokenSpec{User: "user3", TTL: time.Hour})
	id.ExpiresAt = clk.Now().Add(-10 * time.Second) // expired, but within the skew
	_, err = a.IssueSession(id)
	if ae := authError(t, err); ae.Status != 401 || ae.Code != "token_expired" {
		t.Fatalf("expired bearer: %d %s", ae.Status, ae.Code)
	}
	if !strings.HasPrefix(auth.SessionIssuer, "urn:") {
		t.Fatalf("SessionIssuer %q can be mistaken for a URL issuer", auth.SessionIssuer)
	}
}

// TestSessionKeepsTokenRolesOnly: the directory's roles are not copied into
// the cookie (they are added again, fresh, when it is used).
func TestSessionKeepsTokenRolesOnly(t *testing.T) {
	a := newAuth(t, nil, openStore(t))
	tok, _ := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: "user1", Roles: []string{"b", "a"}, TTL: time.Hour}, time.Now())
	id, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(id.Roles, "admin") {
		t.Fatalf("user1 is an admin in the directory: %v", id.Roles)
	}
	sess, err := a.IssueSession(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(payload(t, sess.Token)["rol"])
	if string(b) != `["a","b"]` {
		t.Fatalf("session rol = %s, want the token's [a b]", b)
	}
}
