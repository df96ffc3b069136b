package main_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

// TestBrowserServiceWorkerShowsPush: a front end's one-line /sw.js that
// imports Herald's /herald-sw.js shows a pushed notification, with its
// title, body, a tag per id, and its url kept for the click. Chromium
// delivers the push through DevTools (ServiceWorker.deliverPushMessage):
// a real subscription needs Google's push service, which this machine
// cannot reach; and headless Chromium offers no way to click a system
// notification, so the click's handler (focus a tab at the url, or open
// it) is not driven here.
// swProbe tells the page about each push the worker receives (the test
// redelivers until one arrives: DevTools' delivery to a freshly activated
// worker is sometimes dropped) and about each notification shown.
const swProbe = `
const tell = (m) => self.clients.matchAll({ includeUncontrolled: true }).then((cs) => cs.forEach((c) => c.postMessage(m)));
self.addEventListener("push", () => tell("push"));
const show = self.registration.showNotification.bind(self.registration);
self.registration.showNotification = (title, o) => show(title, o).then(() => tell("shown"), (e) => { tell("error " + e); throw e; });
`

func TestBrowserServiceWorkerShowsPush(t *testing.T) {
	ctx := browser(t)
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sw.js":
			w.Header().Set("Content-Type", "text/javascript")
			// The front end's one line, then what the test watches: every
			// push the worker receives is told to the page.
			w.Write([]byte(`importScripts("` + p.URL + `/herald-sw.js");` + "\n" + swProbe))
		default:
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<!doctype html><title>front end</title><p>front end</p>"))
		}
	}))
	defer front.Close()

	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: front.URL,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	navigate(t, ctx, front.URL+"/")
	regs := make(chan serviceworker.RegistrationID, 16)
	evctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for ev, err := range chromedp.Events(evctx, serviceworker.WorkerRegistrationUpdated) {
			if err != nil {
				return
			}
			for _, r := range ev.Registrations {
				if !r.IsDeleted && strings.HasPrefix(r.ScopeURL, front.URL) {
					regs <- r.RegistrationID
				}
			}
		}
	}()
	if _, err := chromedp.Call(ctx, serviceworker.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("ServiceWorker.enable: %v", err)
	}
	// Registered, then activated (ready resolves while it may still be
	// activating; a push delivered then can be lost).
	if !eval[bool](t, ctx, `navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready).then(r =>
		r.active.state === "activated" || new Promise(ok => r.active.addEventListener("statechange", () => r.active.state === "activated" && ok(true))))`) {
		t.Fatal("service worker not activated")
	}
	var id serviceworker.RegistrationID
	select {
	case id = <-regs:
	case <-time.After(15 * time.Second):
		t.Fatal("no service worker registration reported")
	}
	eval[bool](t, ctx, `(window.heard = [], navigator.serviceWorker.addEventListener("message", (e) => heard.push(e.data)), true)`)
	payload := `{"id":"7","type":"request.approved","title":"Your request was approved","body":"Vacation","url":"/requests/481","created_at":"2026-12-05T10:00:00.000Z"}`
	for attempt := 0; ; attempt++ {
		if _, err := chromedp.Call(ctx, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
			Origin: front.URL, RegistrationID: id, Data: payload,
		}); err != nil {
			t.Fatalf("deliver push: %v", err)
		}
		if waitHeard(t, ctx, "push", 2*time.Second) {
			break
		}
		if attempt == 5 {
			t.Fatal("the service worker received no push in 6 deliveries")
		}
		t.Logf("push delivery %d not received; delivering again", attempt+1)
	}
	if !waitHeard(t, ctx, "shown", 10*time.Second) {
		t.Fatalf("no notification shown; the worker said %s", eval[string](t, ctx, `JSON.stringify(heard)`))
	}
	const shown = `navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => JSON.stringify(ns.map(n => [n.title, n.body, n.tag, n.data])))`
	want := `[["Your request was approved","Vacation","herald-7",{"id":"7","type":"request.approved","url":"/requests/481"}]]`
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := eval[string](t, ctx, shown)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications shown: %s; want %s", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHeard waits until the page heard msg from the service worker.
func waitHeard(t *testing.T, ctx context.Context, msg string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if eval[bool](t, ctx, `heard.includes(`+strconv.Quote(msg)+`)`) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
