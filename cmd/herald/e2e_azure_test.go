package main_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/oidctest"
)

// azureEnv is the environment of a Herald that trusts iss, with no
// JWT_SECRET.
func azureEnv(iss *oidctest.Issuer) []string {
	return []string{
		"AZURE_ISSUER_BASE_URL=" + iss.URL,
		"AZURE_AUDIENCE=" + oidctest.Audience + "," + oidctest.ClientID,
	}
}

// waitReady polls /readyz until it answers want.
func waitReady(t *testing.T, p *proc, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, _ := heraldtest.Do(t, http.MethodGet, p.URL+"/readyz", "", nil)
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d, want %d\n%s", status, want, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEndAzure drives the binary with an in-test Azure AD: an app
// (client credentials) manages the directory and publishes; an employee
// trades an Azure token for a session cookie and streams with the cookie
// alone, as a browser's EventSource does.
func TestEndToEndAzure(t *testing.T) {
	iss := oidctest.New(t)
	p := startHerald(t, []string{"serve"}, azureEnv(iss)...)
	waitReady(t, p, 200)

	app := oidctest.Sign(t, iss.EC, iss.App("hr-sync-app", "Notifications.Publish", "Directory.Write"))
	status, _, out := heraldtest.Do(t, http.MethodPut, p.URL+"/employees/12", app,
		map[string]any{"email": "ana@corp.example", "name": "Ana"})
	if status != 201 {
		t.Fatalf("PUT employee as an app: %d %s", status, out)
	}
	ana := oidctest.Sign(t, iss.RSA, iss.User("Ana@Corp.Example"))
	status, hdr, out := heraldtest.Do(t, http.MethodPost, p.URL+"/session", "", nil, "Authorization", "Bearer "+ana)
	setCookie := hdr.Get("Set-Cookie")
	if status != 204 || !strings.HasPrefix(setCookie, "token=") || !strings.Contains(setCookie, "Secure") || !strings.Contains(setCookie, "HttpOnly") {
		t.Fatalf("POST /session: %d %q %s", status, setCookie, out)
	}
	cookie := strings.SplitN(setCookie, ";", 2)[0]

	s := heraldtest.MustOpenStream(t, p.URL+"/events", "", "Cookie", cookie)
	status, _, out = heraldtest.Do(t, http.MethodPost, p.URL+"/notifications", app,
		map[string]any{"to": map[string]any{"emails": []string{"ANA@corp.example"}}, "type": "hr.hello", "title": "Welcome, Ana"})
	if status != 201 {
		t.Fatalf("publish as an app: %d %s", status, out)
	}
	if m := s.MustNext(t, 10*time.Second); !strings.Contains(m.Data, "Welcome, Ana") {
		t.Fatalf("stream got %+v", m)
	}
	status, _, out = heraldtest.Do(t, http.MethodGet, p.URL+"/events", app, nil)
	if status != 403 || !strings.Contains(string(out), `"forbidden"`) {
		t.Fatalf("app opening a stream: %d %s", status, out)
	}
	logs := p.Logs()
	for _, secret := range []string{ana, app, strings.TrimPrefix(cookie, "token=")} {
		if strings.Contains(logs, secret) {
			t.Fatal("a token reached the logs")
		}
	}
	if !strings.Contains(logs, "JWT_SECRET") {
		t.Errorf("no warning about per-process session keys:\n%s", logs)
	}
}

// TestAzureKeysLateAtStart: with the key endpoint down at start, Herald
// serves (HS256 works) but is not ready; it becomes ready by itself once
// the endpoint is up.
func TestAzureKeysLateAtStart(t *testing.T) {
	iss := oidctest.New(t)
	iss.SetDown(true)
	p := startHerald(t, []string{"serve"}, append(azureEnv(iss), "JWT_SECRET="+e2eSecret)...)
	waitReady(t, p, 503)
	svc := mint(t, "svc", "service", "Directory.Write")
	if status, _, out := heraldtest.Do(t, http.MethodPut, p.URL+"/employees/3", svc, map[string]any{"username": "cara"}); status != 201 {
		t.Fatalf("HS256 while the keys are missing: %d %s", status, out)
	}
	iss.SetDown(false)
	waitReady(t, p, 200)
	app := oidctest.Sign(t, iss.RSA, iss.App("app", "Notifications.Publish"))
	status, _, out := heraldtest.Do(t, http.MethodPost, p.URL+"/notifications", app,
		map[string]any{"to": map[string]any{"employees": []int{3}}, "type": "t", "title": "late keys"})
	if status != 201 {
		t.Fatalf("azure app after the keys loaded: %d %s", status, out)
	}
}
