package main_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/corp/herald/internal/heraldtest"
)

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

// browser starts headless Chromium for the test, with extra options.
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
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
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
		// An error may be passing (the page reloading): retry until the deadline.
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[string](js)); err == nil && strings.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %q (%v), still without %q", js, got, err, want)
	return ""
}

// TestDemoPageInBrowser opens the --dev demo page in headless Chromium: its
// EventSource (cookie auth, parked HTTP/1.1 stream) receives a notification
// published over REST, the inbox shows it, the page's own publish form and
// mark-all-read work.
func TestDemoPageInBrowser(t *testing.T) {
	ctx := browser(t)
	p := startHerald(t, []string{"serve", "--dev"})
	var banner string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(banner, "inbox") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		p.mu.Lock()
		banner = p.stdout.String()
		p.mu.Unlock()
	}
	tokens := regexp.MustCompile(`Bearer ([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(banner, -1)
	if len(tokens) < 2 {
		t.Fatalf("no tokens in the banner:\n%s", banner)
	}
	ana := tokens[1][1]

	// The page signs in as its first demo user, Ana (employee 1).
	if err := chromedp.Do(ctx, chromedp.Navigate(p.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("status").textContent`, "live")

	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", ana,
		map[string]any{"to": map[string]any{"employees": []int{1}}, "type": "browser.test", "title": "Seen in Chromium"})
	if status != 201 {
		t.Fatalf("publish: %d %s", status, out)
	}
	waitText(t, ctx, `document.getElementById("log").textContent`, "notification 1: Seen in Chromium")
	waitText(t, ctx, `document.getElementById("inbox").textContent`, "Seen in Chromium")
	waitText(t, ctx, `document.getElementById("unread").textContent`, "1")

	// The page's own form publishes (as the publisher) to Ana herself.
	err := chromedp.Do(ctx,
		chromedp.SetValue(`#to`, "1"),
		chromedp.SetValue(`#title`, "From the form"),
		chromedp.Click(`#publish button`),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("pubresult").textContent`, "201")
	waitText(t, ctx, `document.getElementById("log").textContent`, "notification 2: From the form")

	if err := chromedp.Do(ctx, chromedp.Click(`#readall`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("unread").textContent`, "0")
}

// TestBrowserResumesAcrossRestart: Herald (--dev, its generated secret)
// restarts under an open page; a notification published before the browser
// is back is replayed when EventSource reconnects by itself with
// Last-Event-ID (a fresh connect would not get it: it was stored before the
// connect). Then Herald comes back with a new secret: the page, refused,
// reloads itself with fresh tokens and is live again.
func TestBrowserResumesAcrossRestart(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	db := "DATABASE_URL=sqlite:" + dir + "/restart.db"
	p := startHerald(t, []string{"serve", "--dev"}, db)
	kept, err := os.ReadFile(dir + "/restart.db.jwt-secret")
	if err != nil {
		t.Fatal(err)
	}
	secret := "JWT_SECRET=" + strings.TrimSpace(string(kept))
	ana := mintWith(t, secret, "ana")

	if err := chromedp.Do(ctx, chromedp.Navigate(p.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `document.getElementById("status").textContent`, "live")
	publish := func(url, title string) {
		t.Helper()
		status, _, out := heraldtest.Do(t, "POST", url+"/notifications", ana,
			map[string]any{"to": map[string]any{"employees": []int{1}}, "type": "t", "title": title})
		if status != 201 {
			t.Fatalf("publish %q: %d %s", title, status, out)
		}
	}
	publish(p.URL, "before restart")
	waitText(t, ctx, `document.getElementById("log").textContent`, "notification 1: before restart")

	// Restart on the same address and database.
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.exited <- nil
	addr := strings.TrimPrefix(p.URL, "http://")
	p2 := startHerald(t, []string{"serve", "--dev"}, db, "HTTP_ADDR="+addr)
	publish(p2.URL, "while away")
	waitText(t, ctx, `document.getElementById("log").textContent`, "notification 2: while away")

	// A new database, so a new secret: the page's tokens are refused.
	p2.cmd.Process.Signal(os.Interrupt)
	<-p2.exited
	p2.exited <- nil
	other := t.TempDir()
	p3 := startHerald(t, []string{"serve", "--dev"}, "DATABASE_URL=sqlite:"+other+"/new.db", "HTTP_ADDR="+addr)
	kept, err = os.ReadFile(other + "/new.db.jwt-secret")
	if err != nil {
		t.Fatal(err)
	}
	ana = mintWith(t, "JWT_SECRET="+strings.TrimSpace(string(kept)), "ana")
	// The page reloads itself: read it without assuming it is there.
	text := func(id string) string { return `(document.getElementById("` + id + `") || {}).textContent || ""` }
	waitText(t, ctx, text("status"), "live")
	publish(p3.URL, "after a new secret")
	waitText(t, ctx, text("log"), "after a new secret")
}
