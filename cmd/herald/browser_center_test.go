package main_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/corp/herald/internal/heraldtest"

	_ "modernc.org/sqlite"
)

// The browser tests of this file exercise the notification center (seen,
// archive, counts, state events, url): TestCenter*.

// needCenter fails the test at once, saying why, when Herald answers
// GET /notifications/counts with 404 (a center that went missing is a
// failure, not a skip).
func needCenter(t *testing.T, herald, token string) {
	t.Helper()
	if status, _, _ := heraldtest.Do(t, "GET", herald+"/notifications/counts", token, nil); status == 404 {
		t.Fatal("GET /notifications/counts is 404: the notification center's routes are missing")
	}
}

// counts reads GET /notifications/counts.
func counts(t *testing.T, herald, token string) string {
	t.Helper()
	status, _, out := heraldtest.Do(t, "GET", herald+"/notifications/counts", token, nil)
	if status != 200 {
		t.Fatalf("counts: %d %s", status, out)
	}
	return strings.TrimSpace(string(out))
}

// waitCounts waits until GET /notifications/counts answers want.
func waitCounts(t *testing.T, herald, token, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := counts(t, herald, token); got != want; got = counts(t, herald, token) {
		if time.Now().After(deadline) {
			t.Fatalf("counts %s, want %s", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCenterInboxSeenOnOpen: the badge counts unseen notifications; opening
// the list marks the shown ones seen (the badge clears, unread stays), and
// one that arrives while it is open is seen at once.
func TestCenterInboxSeenOnOpen(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	publish(t, p.URL, svc, toEmployee(2, "One"))
	publish(t, p.URL, svc, toEmployee(2, "Two"))

	openInbox(t, ctx, s, p.URL, ben, "")
	waitFor(t, ctx, "the badge shows 2", badgeText+` === "2"`, badgeText)
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "opening clears the badge", badgeText+` === "" && `+unreadOnes+`.length === 2`, `JSON.stringify([`+badgeText+`, `+unreadOnes+`])`)
	waitCounts(t, p.URL, ben, `{"unread_count":2,"unseen_count":0}`)
	publish(t, p.URL, svc, toEmployee(2, "Three, while open"))
	waitFor(t, ctx, "it shows at the top", itemTitles+`[0] === "Three, while open"`, `JSON.stringify(`+itemTitles+`)`)
	waitCounts(t, p.URL, ben, `{"unread_count":3,"unseen_count":0}`)
	waitFor(t, ctx, "and is seen at once", badgeText+` === ""`, badgeText)
	eval[any](t, ctx, openBell) // closes
	publish(t, p.URL, svc, toEmployee(2, "Four, while closed"))
	waitFor(t, ctx, "the badge counts it", badgeText+` === "1"`, badgeText)
}

// TestCenterInboxArchive: the archive button and the Delete key archive an
// item; it leaves the list and Herald's inbox, and the counts follow.
func TestCenterInboxArchive(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	for _, title := range []string{"Keep", "By key", "By button"} {
		publish(t, p.URL, svc, toEmployee(2, title))
	}
	openInbox(t, ctx, s, p.URL, ben, "")
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the list", itemTitles+`.length === 3`)

	eval[any](t, ctx, shadow+`.querySelector("li .archive").click()`)
	waitFor(t, ctx, "archived by the button", `JSON.stringify(`+itemTitles+`) === '["By key","Keep"]'`, `JSON.stringify(`+itemTitles+`)`)
	eval[any](t, ctx, shadow+`.querySelector("li:not(.leaving) .main").focus()`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Delete)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "archived by the key", `JSON.stringify(`+itemTitles+`) === '["Keep"]'`, `JSON.stringify(`+itemTitles+`)`)
	waitFor(t, ctx, "the focus stays in the list", focused+` === "Keep"`, focused)
	// The list changes before Herald answers: wait for both archives to
	// land before reading Herald's inbox.
	waitCounts(t, p.URL, ben, `{"unread_count":1,"unseen_count":0}`)

	waitCounts(t, p.URL, ben, `{"unread_count":1,"unseen_count":0}`) // both archives are stored
	_, _, out := heraldtest.Do(t, "GET", p.URL+"/notifications", ben, nil)
	if strings.Contains(string(out), "By key") || strings.Contains(string(out), "By button") || !strings.Contains(string(out), "Keep") {
		t.Fatalf("Herald's inbox after archiving: %s", out)
	}
	_, _, out = heraldtest.Do(t, "GET", p.URL+"/notifications?archived=true", ben, nil)
	if !strings.Contains(string(out), "By key") || !strings.Contains(string(out), "By button") {
		t.Fatalf("Herald's archive: %s", out)
	}
}

// TestCenterCrossTabState: a read, a "mark all read", an archive or an
// opening in one tab reaches the other tab's inbox at once (state events
// over the one shared stream), over both transports.
func TestCenterCrossTabState(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	needCenter(t, p.URL, mint(t, "ben"))
	for i, transport := range []string{"sse", "ws"} {
		t.Run(transport, func(t *testing.T) {
			// Ben over SSE, Cara over WebSocket, each in a browser of its own.
			user, id := []string{"ben", "cara"}[i], []int{2, 3}[i]
			ben := mint(t, user)
			browserCtx := browser(t)
			for _, title := range []string{"A", "B", "C"} {
				publish(t, p.URL, svc, toEmployee(id, title))
			}
			one, _ := newTab(t, browserCtx, "tab 1")
			two, _ := newTab(t, browserCtx, "tab 2")
			openInbox(t, one, s, p.URL, ben, "&transport="+transport)
			openInbox(t, two, s, p.URL, ben, "&transport="+transport)
			waitStreams(t, p.URL, 1)
			waitFor(t, two, "tab 2's badge", badgeText+` === "3"`, badgeText)
			eval[any](t, two, openBell) // tab 2 shows its list, so changes are visible there
			waitFor(t, two, "tab 2's list", itemTitles+`.length === 3`)
			eval[any](t, two, openBell) // and closes it again: seen, so tab 1's badge clears
			waitFor(t, one, "an opening in tab 2 clears tab 1's badge", badgeText+` === ""`, badgeText)

			eval[any](t, one, openBell)
			waitFor(t, one, "tab 1's list", itemTitles+`.length === 3`)
			eval[any](t, one, shadow+`.querySelectorAll("li .main")[0].click()`) // C
			waitFor(t, two, "a read in tab 1 shows in tab 2", `JSON.stringify(`+unreadOnes+`) === '["B","A"]'`, `JSON.stringify(`+unreadOnes+`)`)
			eval[any](t, one, shadow+`.querySelector("li .archive").click()`) // C
			waitFor(t, two, "an archive in tab 1 shows in tab 2", `JSON.stringify(`+itemTitles+`) === '["B","A"]'`, `JSON.stringify(`+itemTitles+`)`)
			eval[any](t, one, shadow+`.querySelector(".all").click()`)
			waitFor(t, two, "mark all read in tab 1 shows in tab 2", unreadOnes+`.length === 0`, `JSON.stringify(`+unreadOnes+`)`)
			waitCounts(t, p.URL, ben, `{"unread_count":0,"unseen_count":0}`)
		})
	}
}

// TestCenterItemURL: clicking an item with a url marks it read (the
// request outlives the page) and follows the link.
func TestCenterItemURL(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	publish(t, p.URL, svc, map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "request.approved", "title": "Go there", "url": "/landing"})
	openInbox(t, ctx, s, p.URL, ben, "")
	eval[any](t, ctx, openBell)
	waitFor(t, ctx, "the item links to the page", shadow+`.querySelector("li a.main")?.href === `+jsString(s.URL+"/landing"))
	eval[any](t, ctx, shadow+`.querySelector("li a.main").click()`)
	waitFor(t, ctx, "followed", `location.pathname === "/landing"`)
	waitCounts(t, p.URL, ben, `{"unread_count":0,"unseen_count":0}`)
}

// TestCenterHelpers: herald.js's helpers for the center's calls, and the
// state events they cause on the connection (both transports).
func TestCenterHelpers(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	for i, transport := range []string{"sse", "ws"} {
		t.Run(transport, func(t *testing.T) {
			// Ben's ids (his sequence): 1, 2 for the first run, 3, 4 for the second.
			a, b := fmt.Sprint(2*i+1), fmt.Sprint(2*i+2)
			publish(t, p.URL, svc, toEmployee(2, "A"))
			publish(t, p.URL, svc, toEmployee(2, "B"))
			tab, closeTab := newTab(t, ctx, transport)
			defer closeTab()
			navigate(t, tab, s.clientURL(p.URL, ben, "&transport="+transport))
			waitFor(t, tab, "live", `window.conn?.status.status === "live"`)
			steps := []struct{ call, op string }{
				{`conn.seen([` + jsString(a) + `])`, "seen"},
				{`conn.read("all")`, "read"},
				{`conn.unread(` + jsString(b) + `)`, "unread"},
				{`conn.archive([` + jsString(a) + `])`, "archive"},
				{`conn.unarchive([` + jsString(a) + `])`, "unarchive"},
				{`conn.remove([` + jsString(b) + `])`, "delete"},
			}
			for _, st := range steps {
				answer := eval[map[string]any](t, tab, st.call)
				if _, ok := answer["unseen_count"]; !ok {
					t.Fatalf("%s answered %v", st.call, answer)
				}
				waitFor(t, tab, st.call+" comes back as a state event", fmt.Sprintf(`states.some((s) => s.op === %s)`, jsString(st.op)), `JSON.stringify(states)`)
			}
			c := eval[map[string]any](t, tab, `conn.counts()`)
			if c["unread_count"] == nil || c["unseen_count"] == nil {
				t.Fatalf("counts() = %v", c)
			}
			prefs := eval[string](t, tab, `conn.setPreferences({ muted: ["marketing.*"], push: false }).then(() => conn.preferences()).then(JSON.stringify)`)
			if !strings.Contains(prefs, `"marketing.*"`) || !strings.Contains(prefs, `"push":false`) {
				t.Fatalf("preferences after setPreferences: %s", prefs)
			}
			eval[any](t, tab, `conn.setPreferences({ muted: [], push: true })`)
		})
	}
}

// TestCenterInboxAfterReconnect: state changes made while the stream was
// down are not replayed, so after a reconnect the element refetches the
// counts and its list. Here the change is made in the store while Herald is
// stopped, so no state event can carry it.
func TestCenterInboxAfterReconnect(t *testing.T) {
	s := newSite(t)
	path := filepath.Join(t.TempDir(), "h.db")
	db := "DATABASE_URL=sqlite:" + path
	p, svc := startForSite(t, s, db)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	publish(t, p.URL, svc, toEmployee(2, "One"))
	publish(t, p.URL, svc, toEmployee(2, "Two"))
	openInbox(t, ctx, s, p.URL, ben, "")
	eval[any](t, ctx, `void window.inbox.reload()`) // the list, without opening it (opening marks seen)
	waitFor(t, ctx, "the badge and the list", badgeText+` === "2" && `+unreadOnes+`.length === 2`, badgeText)

	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.exited <- nil
	waitFor(t, ctx, "reconnecting", `window.inbox.conn.status.status === "reconnecting"`)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	res, err := raw.Exec(`UPDATE inbox SET read_at = ?1, seen_at = ?1 WHERE employee_id = 2`, now)
	raw.Close()
	if n, _ := res.RowsAffected(); err != nil || n != 2 {
		t.Fatalf("marking read in the store: %v (%d rows)", err, n)
	}

	startForSite(t, s, db, "HTTP_ADDR="+strings.TrimPrefix(p.URL, "http://"))
	waitFor(t, ctx, "the badge and the list catch up", `window.inbox.conn.status.status === "live" && `+badgeText+` === "" && `+unreadOnes+`.length === 0`,
		`JSON.stringify([`+badgeText+`, `+unreadOnes+`])`)
}

// TestCenterInboxWithdrawal: a notification its publisher withdraws leaves
// the recipient's open inbox at once, and the badge follows.
func TestCenterInboxWithdrawal(t *testing.T) {
	s := newSite(t)
	p, svc := startForSite(t, s)
	ben := mint(t, "ben")
	needCenter(t, p.URL, ben)
	ctx := browser(t)
	publish(t, p.URL, svc, toEmployee(2, "Stays"))
	gone := publish(t, p.URL, svc, toEmployee(2, "Sent by mistake"))
	openInbox(t, ctx, s, p.URL, ben, "")
	eval[any](t, ctx, `void window.inbox.reload()`) // the list, without opening it (opening marks seen)
	waitFor(t, ctx, "both", badgeText+` === "2" && `+itemTitles+`.length === 2`, badgeText)
	if status, _, out := heraldtest.Do(t, "DELETE", p.URL+"/notifications/"+gone, svc, nil); status != 204 {
		t.Fatalf("withdraw: %d %s", status, out)
	}
	waitFor(t, ctx, "the withdrawn one leaves, the badge follows", `JSON.stringify(`+itemTitles+`) === '["Stays"]' && `+badgeText+` === "1"`,
		`JSON.stringify([`+itemTitles+`, `+badgeText+`])`)
}
