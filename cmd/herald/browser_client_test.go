package main_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
)

// startForSite runs Herald (--dev: employees 1 ana, 2 ben, 3 cara) with the
// site's origin in FRONTEND_URL, and returns it with a publisher's token.
func startForSite(t *testing.T, s *site, env ...string) (*proc, string) {
	t.Helper()
	env = append([]string{"JWT_SECRET=" + e2eSecret, "FRONTEND_URL=" + s.URL}, env...)
	return startHerald(t, []string{"serve", "--dev"}, env...), mint(t, "publisher", "service")
}

// TestHeraldJSDelivers: a front end on its own origin imports herald.js
// from Herald, signs in with POST /session and gets notifications over each
// transport: SSE, WebSocket, and, with EventSource removed, the fallback.
// Ephemeral messages come too, without an id.
func TestHeraldJSDelivers(t *testing.T) {
	tests := []struct {
		name, query, transport string
	}{
		{"sse", "&transport=sse", "sse"},
		{"ws", "&transport=ws", "ws"},
		{"auto", "", "sse"},
		{"auto without EventSource", "&noes=1", "ws"},
	}
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case is another employee (a stream of its own) in a tab of its own.
			employee := []string{"ana", "ben", "cara", "ana"}[i]
			id := []int{1, 2, 3, 1}[i]
			tab, closeTab := newTab(t, ctx, tt.name)
			defer closeTab()
			navigate(t, tab, s.clientURL(p.URL, mint(t, employee), tt.query))
			waitFor(t, tab, "connected", `window.conn?.status.status === "live"`, `JSON.stringify([window.failed, window.statuses])`)
			if got := eval[string](t, tab, `conn.status.transport`); got != tt.transport {
				t.Fatalf("transport %q, want %q", got, tt.transport)
			}
			title := "over " + tt.name
			publish(t, p.URL, svc, toEmployee(id, title))
			waitFor(t, tab, "the notification arrived", fmt.Sprintf(`got.some((n) => n.title === %s && /^[0-9]+$/.test(n.id))`, jsString(title)), `JSON.stringify(got)`)
			if got, want := eval[string](t, tab, `conn.lastEventId`), eval[string](t, tab, `got.at(-1).id`); got != want {
				t.Fatalf("lastEventId %q, want the id of the last notification, %q", got, want)
			}
			ephemeral := map[string]any{"to": map[string]any{"employees": []int{id}}, "type": "typing", "title": "ephemeral " + tt.name, "persist": false}
			if status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", svc, ephemeral); status != 202 {
				t.Fatalf("ephemeral publish: %d %s", status, out)
			}
			waitFor(t, tab, "the ephemeral message arrived", fmt.Sprintf(`got.some((n) => n.title === %s && n.id === undefined)`, jsString("ephemeral "+tt.name)), `JSON.stringify(got)`)
			// A reconnect refetches the counts (state changes are not replayed).
			waitFor(t, tab, "counts fetched", `states.some((s) => s.op === "counts" && typeof s.unread_count === "number")`, `JSON.stringify(states)`)
		})
	}
}

// TestHeraldJSSharedByTabs: three tabs of a front end hold one stream
// (/metrics), and each gets every notification. When the tab holding the
// stream closes, another takes over and resumes from the last id the tabs
// saw: a notification published while no tab holds the stream still
// reaches both remaining tabs, once.
func TestHeraldJSSharedByTabs(t *testing.T) {
	browserCtx := browser(t) // stays on about:blank; closing it would end the browser
	s := newSite(t)
	p, svc := startForSite(t, s)
	url := s.clientURL(p.URL, mint(t, "ben"), "")

	names := []string{"tab 1", "tab 2", "tab 3"}
	tabs, closers := map[string]context.Context{}, map[string]func(){}
	for _, name := range names {
		tabs[name], closers[name] = newTab(t, browserCtx, name)
		navigate(t, tabs[name], url)
		waitFor(t, tabs[name], name+" is live", `window.conn?.status.status === "live"`, `JSON.stringify([window.failed, window.statuses])`)
	}
	leaders := func() []string {
		var out []string
		for _, n := range names {
			if tabs[n] != nil && eval[bool](t, tabs[n], `conn.status.leader`) {
				out = append(out, n)
			}
		}
		return out
	}
	if l := leaders(); len(l) != 1 || l[0] != "tab 1" {
		t.Fatalf("leaders %v, want tab 1 alone", l)
	}
	for _, n := range names[1:] {
		if st := eval[string](t, tabs[n], `JSON.stringify(conn.status)`); !strings.Contains(st, `"shared":true`) || !strings.Contains(st, `"transport":"sse"`) {
			t.Fatalf("%s status %s, want the leader's stream, shared", n, st)
		}
	}
	waitStreams(t, p.URL, 1)

	// Ben's own ids (his sequence) are 1, 2, 3.
	publish(t, p.URL, svc, toEmployee(2, "to every tab"))
	for _, n := range names {
		waitFor(t, tabs[n], n+" got it", `got.some((n) => n.id === "1")`, `JSON.stringify(got)`)
	}

	// Close the leader's tab, and publish at once, before another tab
	// holds the stream.
	closers["tab 1"]()
	tabs["tab 1"] = nil
	publish(t, p.URL, svc, toEmployee(2, "during the handover"))
	deadline := time.Now().Add(10 * time.Second)
	for len(leaders()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no single new leader among tabs 2 and 3: %v", leaders())
		}
		time.Sleep(50 * time.Millisecond)
	}
	publish(t, p.URL, svc, toEmployee(2, "after the handover"))
	for _, n := range names[1:] {
		waitFor(t, tabs[n], n+" got 2 and 3", `got.some((n) => n.id === "3")`, `JSON.stringify(got)`)
		got := eval[[]string](t, tabs[n], `got.map((n) => n.id + " " + n.title)`)
		if want := []string{"1 to every tab", "2 during the handover", "3 after the handover"}; !slices.Equal(got, want) {
			t.Fatalf("%s got %q, want %q: each once, in order", n, got, want)
		}
	}
	waitStreams(t, p.URL, 1)
}

// TestHeraldJSForeignOrigin: a page on an origin that FRONTEND_URL does
// not list, on the same site as Herald (so the browser sends the session
// cookie along), can neither load herald.js, nor read the API, nor read a
// stream, nor open /ws; the allowed front end's stream meanwhile works.
func TestHeraldJSForeignOrigin(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	navigate(t, ctx, s.clientURL(p.URL, mint(t, "ben"), ""))
	waitFor(t, ctx, "the allowed front end is live", `window.conn?.status.status === "live"`)

	evil := newSite(t)
	tab, _ := newTab(t, ctx, "foreign")
	navigate(t, tab, evil.URL+"/landing")
	eval[any](t, tab, `(async () => {
		const herald = `+jsString(p.URL)+`;
		const r = window.r = { importFailed: false, fetchFailed: false, esOpened: false, esMessages: 0, wsOpened: false, wsMessages: 0, wsClose: 0 };
		try { await import(herald + "/herald.js"); } catch { r.importFailed = true; }
		try { await fetch(herald + "/notifications", { credentials: "include" }); } catch { r.fetchFailed = true; }
		const es = window.es = new EventSource(herald + "/events", { withCredentials: true });
		es.onopen = () => { r.esOpened = true; };
		es.onmessage = () => { r.esMessages++; };
		es.addEventListener("notification", () => { r.esMessages++; });
		const ws = new WebSocket(herald.replace("http", "ws") + "/ws");
		ws.onopen = () => { r.wsOpened = true; };
		ws.onmessage = () => { r.wsMessages++; };
		ws.onclose = (e) => { r.wsClose = e.code; };
	})()`)
	waitFor(t, tab, "the foreign page is refused", `r.importFailed && r.fetchFailed && r.wsClose !== 0 && es.readyState === EventSource.CLOSED`, `JSON.stringify([r, es.readyState])`)

	publish(t, p.URL, svc, toEmployee(2, "for the allowed origin only"))
	waitFor(t, ctx, "the allowed front end got it", `got.some((n) => n.title === "for the allowed origin only")`)
	time.Sleep(300 * time.Millisecond)
	if got := eval[string](t, tab, `JSON.stringify(r)`); got != `{"importFailed":true,"fetchFailed":true,"esOpened":false,"esMessages":0,"wsOpened":false,"wsMessages":0,"wsClose":1006}` {
		t.Fatalf("the foreign page: %s", got)
	}
}

// TestHeraldJSRenewsSession: without a session cookie the status says
// unauthorized (missing_token), and Herald.startSession brings the stream
// up at once; when that session expires (token_expired) and nothing renews
// it, the status says unauthorized again, until a connect() brings a
// session provider; from then on herald.js renews the session itself at
// each expiry and resumes, nothing lost.
func TestHeraldJSRenewsSession(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	navigate(t, ctx, s.clientURL(p.URL, "", ""))
	waitFor(t, ctx, "unauthorized without a cookie", `conn.status.status === "unauthorized" && conn.status.code === "missing_token"`, `JSON.stringify(conn.status)`)

	eval[any](t, ctx, `fetch("/token?user=ben&ttl=4s").then((r) => r.text()).then((token) => Herald.startSession(token, { url: `+jsString(p.URL)+` }))`)
	waitFor(t, ctx, "live after startSession", `conn.status.status === "live"`, `JSON.stringify(conn.status)`)
	waitFor(t, ctx, "unauthorized once the session expired", `statuses.some((s) => s.reason === "token_expired") && conn.status.status === "unauthorized"`, `JSON.stringify(conn.status)`)

	eval[any](t, ctx, `window.renewals = 0; window.conn2 = Herald.connect({ url: `+jsString(p.URL)+`,
		session: async () => { renewals++; return (await fetch("/token?user=ben&ttl=4s")).text(); } })`)
	waitFor(t, ctx, "live once a session provider came", `conn.status.status === "live" && renewals === 1`, `JSON.stringify([conn.status, renewals])`)
	waitFor(t, ctx, "renewed at the next expiry", `renewals === 2`, `JSON.stringify([conn.status, renewals])`)
	publish(t, p.URL, svc, toEmployee(2, "after the expiry"))
	waitFor(t, ctx, "resumed", `got.some((n) => n.title === "after the expiry")`, `JSON.stringify([renewals, got, conn.status])`)
}

// msalStub stands in for @azure/msal-browser in the README's page: a
// signed-in account whose tokens come from the site's /token.
const msalStub = `export class PublicClientApplication {
  async initialize() {}
  async handleRedirectPromise() { return null; }
  getActiveAccount() { return { username: "ben" }; }
  getAllAccounts() { return [this.getActiveAccount()]; }
  async acquireTokenSilent() {
    window.tokensIssued = (window.tokensIssued ?? 0) + 1;
    return { accessToken: await (await fetch("/token?user=ben")).text() };
  }
  async loginRedirect() {}
  async logoutRedirect() {}
}`

// TestReadmePage serves the README's copy-paste page ("In the browser", "A
// page") from a front end's origin, with Herald's URL put in and MSAL
// played by a stub: the bell connects through the session provider at the
// first try, and counts what is published.
func TestReadmePage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n### A page\n")
	_, page, _ := strings.Cut(section, "```html\n")
	page, _, ok := strings.Cut(page, "```\n")
	if !ok || !strings.Contains(page, "<herald-inbox>") {
		t.Fatalf("no page in the README's \"A page\" section")
	}
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	s.handle("/readme", "text/html; charset=utf-8", strings.NewReplacer(
		"https://herald.example.com", p.URL,
		"https://esm.sh/@azure/msal-browser@5", "/msal-stub.js",
	).Replace(page))
	s.handle("/msal-stub.js", "text/javascript", msalStub)

	navigate(t, ctx, s.URL+"/readme")
	inbox := `document.querySelector("herald-inbox")`
	waitFor(t, ctx, "the page's bell is live", inbox+`.conn?.status.status === "live"`, `JSON.stringify(`+inbox+`.conn?.status)`)
	if n := eval[int](t, ctx, `window.tokensIssued`); n != 1 {
		t.Fatalf("%d tokens asked for, want 1: the session is made before the first connect", n)
	}
	publish(t, p.URL, svc, toEmployee(2, "Hello from the README"))
	waitFor(t, ctx, "the badge counts it", inbox+`.shadowRoot.querySelector(".badge").textContent === "1"`)
	if eval[bool](t, ctx, `document.body.classList.contains("offline")`) {
		t.Fatal("the page says offline while live")
	}
}
