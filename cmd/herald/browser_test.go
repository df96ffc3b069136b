package main_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/internal/heraldtest"
)

// The browser tests run headless Chromium (chromedp) against the real
// binary: herald.js over SSE and WebSocket, the EventSource-less fallback,
// one stream shared by a browser's tabs and its handover, origins that may
// not read a stream, the --dev demo page, resume across a restart, and
// <herald-inbox> (badge, list, read, keyboard, languages, screenshots).
// The tests that need the notification center are in
// browser_center_test.go.

// chromium returns the browser's path, skipping the test outside CI when
// there is none and failing it under CI=true, where it must run.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no Chromium found: .ci/run installs Debian's chromium")
	}
	t.Skip("no Chromium: install Debian's chromium (apt-get install chromium) to run the browser tests")
	return ""
}

// browser starts headless Chromium for the test, with extra options, and
// returns its first tab. Each tab's console errors and uncaught exceptions
// are logged if the test fails.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// The browser lives as long as the context of its first run: the test,
	// with a bound so that a hung test does not keep it forever.
	opts = append(opts, extra...)
	bound, cancelBound := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(bound, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelBound() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	watchConsole(t, ctx, "tab 1")
	return ctx
}

// newTab opens another tab of the browser of ctx; close closes it (as a
// user closing the tab).
func newTab(t *testing.T, ctx context.Context, name string) (tab context.Context, close func()) {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	watchConsole(t, tab, name)
	t.Cleanup(cancel)
	return tab, cancel
}

// watchConsole keeps a tab's console errors and exceptions, and logs them
// when the test fails.
func watchConsole(t *testing.T, ctx context.Context, name string) {
	var mu sync.Mutex
	var lines []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" || m.Type == "warning" {
				mu.Lock()
				lines = append(lines, fmt.Sprintf("%s: %s:%d %s", name, m.URL, m.Line+1, m))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				t.Log(l)
			}
		}
	})
}

// navigate loads url in the tab.
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

// eval evaluates js in the tab (awaiting a promise) and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls js (an expression giving a boolean) until it is true, and
// fails with what (and the value of show, if given) when it stays false.
func waitFor(t *testing.T, ctx context.Context, what, js string, show ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			seen := ""
			if len(show) > 0 {
				seen, _ = chromedp.Run(ctx, chromedp.Evaluate[string](show[0]))
			}
			t.Fatalf("%s: still not so after 15s (%s: %v) %s", what, js, err, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText polls the page until js (an expression giving a string)
// contains want.
func waitText(t *testing.T, ctx context.Context, js, want string) string {
	t.Helper()
	var (
		got string
		err error
	)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[string](js)); err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		if strings.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %q, still without %q", js, got, want)
	return ""
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return strconv.Quote(s) }

// publish sends a notification as a service and fails unless it is stored.
func publish(t *testing.T, herald, svc string, body map[string]any) string {
	t.Helper()
	status, _, out := heraldtest.Do(t, "POST", herald+"/notifications", svc, body)
	if status != 201 {
		t.Fatalf("publish %v: %d %s", body, status, out)
	}
	return heraldtest.DecodeJSON[struct{ ID string }](t, out).ID
}

// toEmployee is a publish body for one employee.
func toEmployee(id int, title string) map[string]any {
	return map[string]any{"to": map[string]any{"employees": []int{id}}, "type": "browser.test", "title": title}
}

// streamsOpen reads herald_streams_open from /metrics.
func streamsOpen(t *testing.T, herald string) int {
	t.Helper()
	_, _, out := heraldtest.Do(t, "GET", herald+"/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^herald_streams_open (\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no herald_streams_open in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitStreams waits until /metrics shows want open streams.
func waitStreams(t *testing.T, herald string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := streamsOpen(t, herald)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald_streams_open = %d, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// site is a front end on its own origin (127.0.0.1, a port of its own: the
// same site as Herald, so the session cookie reaches Herald from its
// pages and only CORS and the Origin check stand in the way). Its pages
// load herald.js from Herald.
type site struct {
	URL string
	mux *http.ServeMux
}

// handle serves body at path with the content type.
func (s *site) handle(path, contentType, body string) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	})
}

// newSite serves the test pages: /client (connect() with the query's
// options, results on window), /inbox (<herald-inbox>) and /landing.
func newSite(t *testing.T) *site {
	t.Helper()
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("/client", page(clientPage))
	mux.HandleFunc("/inbox", page(inboxPage))
	// /token?user=ben&ttl=4s mints a bearer, as the front end's own sign-in
	// would hand one out (herald.js's session provider fetches it).
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		ttl, err := time.ParseDuration(r.URL.Query().Get("ttl"))
		if err != nil {
			ttl = 10 * time.Minute
		}
		tok, err := auth.MintHS256([]byte(e2eSecret), auth.TokenSpec{User: r.URL.Query().Get("user"), TTL: ttl}, time.Now())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, tok)
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/landing", page(`<!doctype html><title>landing</title><h1>landed</h1>`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &site{URL: srv.URL, mux: mux}
}

// clientPage signs in (POST /session with the query's token, if any), then
// connects with the query's transport; ?noes=1 removes EventSource first.
// What arrives is kept in window.got (notifications), window.states and
// window.statuses; window.conn is the connection.
const clientPage = `<!doctype html><html lang="en"><title>client</title><body>
<script type="module">
const q = new URLSearchParams(location.search);
window.got = []; window.states = []; window.statuses = []; window.events = [];
if (q.has("noes")) delete window.EventSource;
try {
  const Herald = (await import(q.get("herald") + "/herald.js")).default;
  window.Herald = Herald;
  if (q.get("token")) await Herald.startSession(q.get("token"), { url: q.get("herald") });
  window.conn = Herald.connect({
    url: q.get("herald"), transport: q.get("transport") ?? "auto",
    onNotification: (n) => got.push(n), onState: (s) => states.push(s),
    onStatus: (s) => statuses.push(s), onEvent: (name, data) => events.push({ name, data }),
  });
} catch (e) { window.failed = String(e); }
</script>`

// inboxPage signs in, then shows <herald-inbox> (lang from ?lang=) in a bar.
const inboxPage = `<!doctype html><html lang="en"><title>inbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<body style="margin:0;font-family:system-ui">
<nav style="display:flex;justify-content:flex-end;align-items:center;padding:8px 16px;border-bottom:1px solid #ddd" id="bar"></nav>
<script type="module">
const q = new URLSearchParams(location.search);
const Herald = (await import(q.get("herald") + "/herald.js")).default;
window.Herald = Herald;
await Herald.startSession(q.get("token"), { url: q.get("herald") });
const inbox = document.createElement("herald-inbox");
inbox.setAttribute("url", q.get("herald"));
if (q.get("lang")) inbox.lang = q.get("lang");
if (q.get("transport")) inbox.setAttribute("transport", q.get("transport"));
document.getElementById("bar").append(inbox);
window.inbox = inbox;
</script>`

// clientURL is the /client page for an employee's token.
func (s *site) clientURL(herald, token, extra string) string {
	return s.URL + "/client?herald=" + herald + "&token=" + token + extra
}

// TestDemoPageInBrowser opens the --dev demo page: herald.js signs in
// (POST /session) and connects; a notification published over REST shows
// in the page's log and in <herald-inbox>'s badge; the page's own form
// publishes to a person and to a role.
func TestDemoPageInBrowser(t *testing.T) {
	ctx := browser(t)
	p := startHerald(t, []string{"serve", "--dev"}, "JWT_SECRET="+e2eSecret)
	ana := mint(t, "ana")

	// The page signs in as its first demo user, Ana (employee 1).
	navigate(t, ctx, p.URL+"/")
	waitText(t, ctx, `document.getElementById("status").textContent`, "Live over SSE")
	waitText(t, ctx, `document.getElementById("role").textContent`, "holds the browser")

	publish(t, p.URL, ana, toEmployee(1, "Seen in Chromium"))
	waitText(t, ctx, `document.getElementById("log").textContent`, "#1 Seen in Chromium")
	badge := `document.querySelector("herald-inbox").shadowRoot.querySelector(".badge")`
	waitFor(t, ctx, "the badge shows 1", badge+`.textContent === "1" && !`+badge+`.hidden`)

	// The page's own form publishes (as the publisher) to Ana herself...
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#title`), "From the form"),
		chromedp.Click(chromedp.CSS(`#send button[type=submit]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("result").textContent`, "201 · id 2 · 1 recipient")
	waitText(t, ctx, `document.getElementById("log").textContent`, "#2 From the form")
	// ... and to her role.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`input[name=kind][value=role]`)),
		chromedp.SetValue(chromedp.CSS(`#to-role`), "admin"),
		chromedp.SetValue(chromedp.CSS(`#title`), "To the admins"),
		chromedp.Click(chromedp.CSS(`#send button[type=submit]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("log").textContent`, "#3 To the admins")
	waitFor(t, ctx, "the badge shows 3", badge+`.textContent === "3"`)
}

// TestBrowserResumesAcrossRestart: Herald restarts under an open page; what
// is published while it is down, and right after it is back, reaches the
// page: herald.js reconnects with backoff and resumes from the last id.
func TestBrowserResumesAcrossRestart(t *testing.T) {
	ctx := browser(t)
	db := "DATABASE_URL=sqlite:" + t.TempDir() + "/restart.db"
	secret := "JWT_SECRET=" + e2eSecret
	p := startHerald(t, []string{"serve", "--dev"}, db, secret)
	ana := mint(t, "ana")

	navigate(t, ctx, p.URL+"/")
	waitText(t, ctx, `document.getElementById("status").textContent`, "Live")
	publish(t, p.URL, ana, toEmployee(1, "before restart"))
	waitText(t, ctx, `document.getElementById("log").textContent`, "#1 before restart")

	// Restart on the same address and database; publish before the page is
	// back (it is away for at least the first backoff).
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.exited <- nil
	addr := strings.TrimPrefix(p.URL, "http://")
	p2 := startHerald(t, []string{"serve", "--dev"}, db, secret, "HTTP_ADDR="+addr)
	publish(t, p2.URL, ana, toEmployee(1, "while away"))
	waitText(t, ctx, `document.getElementById("log").textContent`, "#2 while away")
	waitText(t, ctx, `document.getElementById("status").textContent`, "Live")
	publish(t, p2.URL, ana, toEmployee(1, "after restart"))
	log := waitText(t, ctx, `document.getElementById("log").textContent`, "#3 after restart")
	if n := strings.Count(log, "while away"); n != 1 {
		t.Fatalf("the log has %q %d times, want once:\n%s", "while away", n, log)
	}
}

// TestDemoPageRecoversFromNewSecret: the page's tokens are refused when
// Herald comes back with another secret (a new database in --dev); the
// page reloads itself, gets fresh tokens, and is live again.
func TestDemoPageRecoversFromNewSecret(t *testing.T) {
	ctx := browser(t)
	p := startHerald(t, []string{"serve", "--dev"}, "DATABASE_URL=sqlite:"+t.TempDir()+"/one.db")
	navigate(t, ctx, p.URL+"/")
	waitText(t, ctx, `document.getElementById("status").textContent`, "Live")

	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.exited <- nil
	dir := t.TempDir()
	p2 := startHerald(t, []string{"serve", "--dev"}, "DATABASE_URL=sqlite:"+dir+"/two.db",
		"HTTP_ADDR="+strings.TrimPrefix(p.URL, "http://"))
	kept, err := os.ReadFile(dir + "/two.db.jwt-secret")
	if err != nil {
		t.Fatal(err)
	}
	ana := mintWith(t, "JWT_SECRET="+strings.TrimSpace(string(kept)), "ana")
	// The page reloads itself: read it without assuming it is there.
	text := func(id string) string { return `(document.getElementById("` + id + `") || {}).textContent || ""` }
	waitText(t, ctx, text("status"), "Live")
	publish(t, p2.URL, ana, toEmployee(1, "after a new secret"))
	waitText(t, ctx, text("log"), "after a new secret")
}

// TestDemoPageTwoTabs: the demo page in two tabs shares one stream; what one
// tab sends arrives in both; picking another employee in one tab makes
// both tabs that employee.
func TestDemoPageTwoTabs(t *testing.T) {
	browserCtx := browser(t)
	p := startHerald(t, []string{"serve", "--dev"}, "JWT_SECRET="+e2eSecret)
	one, _ := newTab(t, browserCtx, "tab 1")
	navigate(t, one, p.URL+"/")
	waitText(t, one, `document.getElementById("role").textContent`, "holds the browser")
	two, _ := newTab(t, browserCtx, "tab 2")
	navigate(t, two, p.URL+"/")
	waitText(t, two, `document.getElementById("role").textContent`, "Shared from another tab")
	waitText(t, two, `document.getElementById("status").textContent`, "Live over SSE")
	waitStreams(t, p.URL, 1)

	err := chromedp.Do(two,
		chromedp.SetValue(chromedp.CSS(`#title`), "Sent from tab 2"),
		chromedp.Click(chromedp.CSS(`#send button[type=submit]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []context.Context{one, two} {
		waitText(t, tab, `document.getElementById("log").textContent`, "#1 Sent from tab 2")
	}

	// Tab 1 becomes Ben; tab 2 follows, and Ben's notifications reach both.
	if err := chromedp.Do(one, chromedp.SetValue(chromedp.CSS(`#user`), "ben")); err != nil {
		t.Fatal(err)
	}
	eval[any](t, one, `document.getElementById("user").dispatchEvent(new Event("change"))`)
	waitFor(t, two, "tab 2 follows", `document.getElementById("user").value === "ben"`)
	for _, tab := range []context.Context{one, two} {
		waitFor(t, tab, "the inbox starts over", badgeText+` === ""`, badgeText)
	}
	waitText(t, one, `document.getElementById("status").textContent`, "Live")
	publish(t, p.URL, mint(t, "ana"), toEmployee(2, "For Ben"))
	for _, tab := range []context.Context{one, two} {
		waitText(t, tab, `document.getElementById("log").textContent`, "#1 For Ben")
		waitFor(t, tab, "Ben's badge", badgeText+` === "1"`, badgeText)
	}
}
