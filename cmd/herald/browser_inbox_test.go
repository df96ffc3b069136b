package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/corp/herald/internal/heraldtest"
)

// Expressions on the <herald-inbox> of the page (window.inbox, or the
// demo page's element).
const (
	inboxEl    = `(window.inbox ?? document.querySelector("herald-inbox"))`
	shadow     = inboxEl + `.shadowRoot`
	badgeText  = `(` + shadow + `.querySelector(".badge").hidden ? "" : ` + shadow + `.querySelector(".badge").textContent)`
	itemTitles = `[...` + shadow + `.querySelectorAll("li:not(.leaving) .title")].map((e) => e.textContent)`
	unreadOnes = `[...` + shadow + `.querySelectorAll("li.unread .title")].map((e) => e.textContent)`
	openBell   = shadow + `.querySelector(".bell").click()`
	panelOpen  = `!` + shadow + `.querySelector(".panel").hidden`
	focused    = `(` + shadow + `.activeElement?.closest("li")?.querySelector(".title")?.textContent ?? ` + shadow + `.activeElement?.className ?? "")`
)

// openInbox loads the site's inbox page as an employee (token) and waits
// for the element to be live.
func openInbox(t *testing.T, tab context.Context, s *site, herald, token, extra string) {
	t.Helper()
	navigate(t, tab, s.URL+"/inbox?herald="+herald+"&token="+token+extra)
	waitFor(t, tab, "the inbox is live", `window.inbox?.conn?.status.status === "live"`)
}

// TestInboxBadgeListRead: the bell counts what is new (live too), the list
// opens newest first and takes the focus, the keyboard moves through it and
// Escape closes it; clicking an item marks it read, "mark all read" the
// rest, and Herald's inbox agrees.
func TestInboxBadgeListRead(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	publish(t, p.URL, svc, toEmployee(2, "First"))
	publish(t, p.URL, svc, toEmployee(2, "Second"))

	openInbox(t, ctx, s, p.URL, ben, "")
	waitFor(t, ctx, "the badge shows 2", badgeText+` === "2"`, badgeText)
	if label := eval[string](t, ctx, shadow+`.querySelector(".bell").getAttribute("aria-label")`); label != "Notifications, 2 new" {
		t.Fatalf("bell aria-label %q", label)
	}
	publish(t, p.URL, svc, toEmployee(2, "Third, live"))
	waitFor(t, ctx, "the badge counts the live one", badgeText+` === "3"`, badgeText)
	waitFor(t, ctx, "the new one is announced", shadow+`.querySelector("[aria-live]").textContent === "New notification: Third, live"`)

	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the list opens", panelOpen+` && `+itemTitles+`.length === 3`, `JSON.stringify(`+itemTitles+`)`)
	if got := eval[[]string](t, ctx, itemTitles); !slices.Equal(got, []string{"Third, live", "Second", "First"}) {
		t.Fatalf("list %q, want newest first", got)
	}
	if got := eval[string](t, ctx, shadow+`.querySelector(".bell").getAttribute("aria-expanded")`); got != "true" {
		t.Fatalf("aria-expanded %q with the list open", got)
	}
	if got := eval[string](t, ctx, shadow+`.querySelector(".panel").getAttribute("role")`); got != "dialog" {
		t.Fatalf("the panel's role is %q", got)
	}
	waitFor(t, ctx, "the first item has the focus", focused+` === "Third, live"`, focused)

	// The keyboard: arrows, End, Home, then Escape back to the bell.
	steps := []struct{ key, want string }{{kb.ArrowDown, "Second"}, {kb.End, "First"}, {kb.ArrowUp, "Second"}, {kb.Home, "Third, live"}}
	for _, st := range steps {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(st.key)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, fmt.Sprintf("%q moves the focus to %q", st.key, st.want), focused+` === `+jsString(st.want), focused)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "Escape closes the list and focuses the bell", `!(`+panelOpen+`) && `+focused+` === "bell"`, focused)

	// Enter on the bell opens it again; clicking an item marks it read.
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "Enter opens the list", panelOpen)
	// The badge counts what is new: opening the list made all three seen.
	waitFor(t, ctx, "opening cleared the badge", badgeText+` === ""`, badgeText)
	eval[any](t, ctx, shadow+`.querySelectorAll("li .main")[1].click()`)
	waitFor(t, ctx, "the clicked item is read", `!`+unreadOnes+`.includes("Second")`, `JSON.stringify(`+unreadOnes+`)`)
	inbox := func() string {
		_, _, out := heraldtest.Do(t, "GET", p.URL+"/notifications?unread=true", ben, nil)
		return string(out)
	}
	waitCounts(t, p.URL, ben, `{"unread_count":2,"unseen_count":0}`)
	if got := inbox(); strings.Contains(got, `"Second"`) {
		t.Fatalf("Herald's unread inbox after the click: %s", got)
	}

	eval[any](t, ctx, shadow+`.querySelector(".all").click()`)
	waitFor(t, ctx, "all read", unreadOnes+`.length === 0 && `+badgeText+` === ""`, `JSON.stringify([`+unreadOnes+`, `+badgeText+`])`)
	waitCounts(t, p.URL, ben, `{"unread_count":0,"unseen_count":0}`)
	if label := eval[string](t, ctx, shadow+`.querySelector(".bell").getAttribute("aria-label")`); label != "Notifications" {
		t.Fatalf("bell aria-label with nothing new: %q", label)
	}

	// A click outside closes the list.
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(20, 300)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a click outside closes the list", `!(`+panelOpen+`)`)
}

// TestInboxPages: the list loads more as it scrolls (before=), without
// repeats, newest first throughout.
func TestInboxPages(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	for i := 1; i <= 45; i++ {
		publish(t, p.URL, svc, toEmployee(3, fmt.Sprintf("n%02d", i)))
	}
	openInbox(t, ctx, s, p.URL, mint(t, "cara"), "")
	waitFor(t, ctx, "the badge caps at 99+ but shows 45", badgeText+` === "45"`, badgeText)
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the first page", itemTitles+`.length === 20`, itemTitles+`.length + ""`)
	for _, want := range []int{40, 45} {
		eval[any](t, ctx, shadow+`.querySelector(".scroll").scrollTop = 1e6`)
		waitFor(t, ctx, fmt.Sprintf("%d items after scrolling", want), itemTitles+fmt.Sprintf(`.length === %d`, want), itemTitles+`.length + ""`)
	}
	got := eval[[]string](t, ctx, itemTitles)
	for i, title := range got {
		if want := fmt.Sprintf("n%02d", 45-i); title != want {
			t.Fatalf("item %d is %q, want %q (newest first, no repeat): %q", i, title, want, got)
		}
	}
}

// TestInboxLanguages: lang chooses the strings and the relative times; an
// inbox with nothing in it says so.
func TestInboxLanguages(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	ago := func(minutes int) string {
		return eval[string](t, ctx, fmt.Sprintf(`window.inbox.ago(new Date(Date.now() - %d * 60000).toISOString())`, minutes))
	}

	openInbox(t, ctx, s, p.URL, mint(t, "cara"), "&lang=es")
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the empty state", `!`+shadow+`.querySelector(".empty").hidden`)
	for js, want := range map[string]string{
		shadow + `.querySelector("h2").textContent`:                                                                    "Notificaciones",
		shadow + `.querySelector(".empty strong").textContent`:                                                         "Estás al día",
		shadow + `.querySelector(".all").textContent`:                                                                  "Marcar todo como leído",
		shadow + `.querySelector(".bell").getAttribute("aria-label")`:                                                  "Notificaciones",
		shadow + `.getElementById(` + shadow + `.querySelector(".panel").getAttribute("aria-labelledby")).textContent`: "Notificaciones",
		shadow + `.querySelector(".close").getAttribute("aria-label")`:                                                 "Cerrar",
		`String(` + shadow + `.querySelector(".all").disabled)`:                                                        "true",
		`getComputedStyle(` + shadow + `.querySelector(".empty")).display`:                                             "flex",
	} {
		if got := eval[string](t, ctx, js); got != want {
			t.Errorf("%s = %q, want %q", js, got, want)
		}
	}
	for minutes, want := range map[int]string{0: "ahora", 5: "hace 5 minutos", 90: "hace 2 horas", 60 * 24: "ayer", 60 * 24 * 3: "hace 3 días"} {
		if got := ago(minutes); got != want {
			t.Errorf("%d minutes ago in Spanish: %q, want %q", minutes, got, want)
		}
	}
	// With the panel closed: an open panel marks a new item seen at once,
	// and the bell's label would race the answer to that.
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the panel closed", shadow+`.querySelector(".panel").hidden`)
	publish(t, p.URL, svc, toEmployee(3, "Hola"))
	waitFor(t, ctx, "the new one", itemTitles+`.length === 1`)
	if got := eval[string](t, ctx, shadow+`.querySelector(".bell").getAttribute("aria-label")`); got != "Notificaciones, 1 nueva" {
		t.Errorf("bell aria-label %q", got)
	}
	if got := eval[string](t, ctx, shadow+`.querySelector("li .archive").getAttribute("aria-label")`); got != "Archivar: Hola" {
		t.Errorf("archive button aria-label %q", got)
	}

	// Switching lang switches the strings at once.
	eval[any](t, ctx, `window.inbox.lang = "en"`)
	if got := eval[string](t, ctx, shadow+`.querySelector("h2").textContent`); got != "Notifications" {
		t.Errorf("after lang=en the title is %q", got)
	}
	for minutes, want := range map[int]string{5: "5 minutes ago", 60 * 24: "yesterday"} {
		if got := ago(minutes); got != want {
			t.Errorf("%d minutes ago in English: %q, want %q", minutes, got, want)
		}
	}
}

// TestInboxErrorState: when Herald cannot be reached the list says so and
// offers to retry; the retry works once Herald is back.
func TestInboxErrorState(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	db := "DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "h.db")
	p, svc := startForSite(t, s, db)
	publish(t, p.URL, svc, toEmployee(2, "Kept"))
	openInbox(t, ctx, s, p.URL, mint(t, "ben"), "")
	waitFor(t, ctx, "the badge", badgeText+` === "1"`)

	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.exited <- nil
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the error state", `!`+shadow+`.querySelector(".error").hidden`)
	if got := eval[string](t, ctx, shadow+`.querySelector(".error").textContent`); !strings.Contains(got, "Couldn’t load your notifications.") || !strings.Contains(got, "Try again") {
		t.Fatalf("error state %q", got)
	}
	waitFor(t, ctx, "the reconnecting note", `!`+shadow+`.querySelector(".note").hidden`, shadow+`.querySelector(".note").textContent`)

	startForSite(t, s, db, "HTTP_ADDR="+strings.TrimPrefix(p.URL, "http://"))
	eval[any](t, ctx, shadow+`.querySelector(".error button").click()`)
	waitFor(t, ctx, "the list after the retry", itemTitles+`.length === 1 && `+shadow+`.querySelector(".error").hidden`, `JSON.stringify(`+itemTitles+`)`)
	waitFor(t, ctx, "live again, the note gone", `window.inbox.conn.status.status === "live" && `+shadow+`.querySelector(".note").hidden`)
}

// TestInboxScreenshots looks at the demo page with the inbox open at a
// desktop and a phone width, in English and Spanish: the panel stays in the
// viewport, nothing scrolls sideways, and the header's text is not cut.
// With HERALD_SCREENSHOTS=dir it writes the README's pictures there
// (handlers/demo/demo-desktop.png, demo-phone.png).
func TestInboxScreenshots(t *testing.T) {
	ctx := browser(t)
	p := startHerald(t, []string{"serve", "--dev"}, "JWT_SECRET="+e2eSecret)
	ana := mint(t, "ana")
	for _, n := range []struct{ typ, title, body string }{
		{"build.failed", "Build #1842 failed on main", "3 tests failed in payments/checkout: the card form no longer accepts a 4-digit CVC."},
		{"meeting.moved", "Design review moved to 3:30 pm", "Room Atlas, 2nd floor."},
		{"expense.approved", "Your expense report was approved", "€182.40 will be paid with your December salary."},
		{"request.approved", "Your vacation request was approved", "December 1 – 5, approved by Ana."},
	} {
		publish(t, p.URL, ana, map[string]any{"to": map[string]any{"employees": []int{1}}, "type": n.typ, "title": n.title, "body": n.body})
	}
	dir := os.Getenv("HERALD_SCREENSHOTS")
	for _, v := range []struct {
		name          string
		width, height int64
		lang          string
		picture       bool // one of the README's
	}{
		{"desktop", 1280, 800, "en", true},
		{"phone", 390, 844, "en", true},
		{"phone-es", 390, 844, "es", false},
	} {
		t.Run(v.name, func(t *testing.T) {
			// Reduced motion: no transition is caught half way in the picture.
			reduced := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}}
			if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, reduced); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(v.width, v.height, chromedp.EmulateScale(2))); err != nil {
				t.Fatal(err)
			}
			navigate(t, ctx, p.URL+"/")
			waitFor(t, ctx, "live", `document.getElementById("status").textContent.startsWith("Live")`)
			eval[any](t, ctx, `document.querySelector("[data-lang=`+v.lang+`]").click()`)
			// The first opening marks the four seen: later ones start with no badge.
			waitFor(t, ctx, "the counts", badgeText+` === `+jsString(map[bool]string{true: "4", false: ""}[v.name == "desktop"]), badgeText)
			eval[any](t, ctx, openBell)
			waitFor(t, ctx, "the list", itemTitles+`.length === 4`)
			// Opening marked the four seen: wait for that state event (the
			// page logs it) so that it cannot undo the staging below.
			waitFor(t, ctx, "the seen state", `document.getElementById("log").textContent.includes("4 unread, 0 unseen")`, `document.getElementById("log").textContent`)
			// Stage the times a real inbox has (the four were published just
			// now), for the picture only.
			eval[any](t, ctx, `{ const e = `+inboxEl+`; [3, 42, 60 * 26, 60 * 24 * 6].forEach((m, i) => { e.items[i].created_at = new Date(Date.now() - m * 60000).toISOString(); }); e.items.forEach((n, i) => { if (i > 1) n.read = true; e.fill(e.byId.get(n.id).li, n); }); e.setCounts({ unread_count: 2, unseen_count: 2 }); }`)
			for js, want := range map[string]bool{
				`(() => { const r = ` + shadow + `.querySelector(".panel").getBoundingClientRect(); return r.left >= 0 && r.right <= innerWidth && r.bottom <= innerHeight; })()`: true,
				`document.documentElement.scrollWidth <= innerWidth`:                                                          true,
				`(() => { const h = ` + shadow + `.querySelector("h2"); return h.scrollWidth <= h.clientWidth; })()`:          true,
				`(() => { const b = ` + shadow + `.querySelector(".all"); return b.getBoundingClientRect().height < 40; })()`: true,
			} {
				if got := eval[bool](t, ctx, js); got != want {
					t.Errorf("%s: %v", js, got)
				}
			}
			if dir == "" || !v.picture {
				return
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "demo-"+v.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestInboxAppliesState: how the element applies each state event that
// Herald sends when the inbox changes elsewhere (another browser, a
// script): flags change, archived and deleted items leave, unarchived ones
// come back, the badge takes the counts; after a reconnect herald.js hands
// it refetched counts ("op":"counts"); a notification it already has is not
// added twice. The list is loaded without opening it, so nothing is marked
// seen by the element itself.
func TestInboxAppliesState(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	for _, title := range []string{"A", "B", "C", "D"} {
		publish(t, p.URL, svc, toEmployee(2, title)) // Ben's ids 1…4
	}
	openInbox(t, ctx, s, p.URL, ben, "")
	eval[any](t, ctx, `void window.inbox.reload()`)
	waitFor(t, ctx, "the list", itemTitles+`.length === 4 && `+badgeText+` === "4"`, badgeText)
	steps := []struct {
		path, body, titles, unread, badge string
	}{
		// Reading marks seen too; unread leaves it seen; archive marks read and seen.
		{"read", `{"ids":["4","2"]}`, `["D","C","B","A"]`, `["C","A"]`, "2"},
		{"unread", `{"ids":["4"]}`, `["D","C","B","A"]`, `["D","C","A"]`, "2"},
		{"archive", `{"ids":["3"]}`, `["D","B","A"]`, `["D","A"]`, "1"},
		{"unarchive", `{"ids":["3"]}`, `["D","C","B","A"]`, `["D","A"]`, "1"},
		{"delete", `{"ids":["1"]}`, `["D","C","B"]`, `["D"]`, ""},
		{"read", `{"all":true}`, `["D","C","B"]`, `[]`, ""},
	}
	for _, st := range steps {
		if status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications/"+st.path, ben, st.body); status != 200 {
			t.Fatalf("POST /notifications/%s %s: %d %s", st.path, st.body, status, out)
		}
		waitFor(t, ctx, "after "+st.path+" "+st.body, `JSON.stringify(`+itemTitles+`) === `+jsString(st.titles)+` && JSON.stringify(`+unreadOnes+`) === `+jsString(st.unread)+` && `+badgeText+` === `+jsString(st.badge),
			`JSON.stringify([`+itemTitles+`, `+unreadOnes+`, `+badgeText+`])`)
	}
	// Every event has been applied: the refetched counts after a reconnect.
	eval[any](t, ctx, `window.inbox.onState({"op":"counts","unread_count":0,"unseen_count":120})`)
	waitFor(t, ctx, "refetched counts", badgeText+` === "99+"`, badgeText)
	eval[any](t, ctx, `window.inbox.onNotification(window.inbox.items[0])`)
	if got := eval[int](t, ctx, itemTitles+`.length`); got != 3 {
		t.Fatalf("a known notification was added again: %d items", got)
	}
}
