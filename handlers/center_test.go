package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/store"
)

// centerPage is GET /notifications with the notification center's fields.
type centerPage struct {
	Notifications []struct {
		ID         string  `json:"id"`
		Type       string  `json:"type"`
		Title      string  `json:"title"`
		Read       bool    `json:"read"`
		Seen       bool    `json:"seen"`
		SeenAt     *string `json:"seen_at"`
		Archived   bool    `json:"archived"`
		ArchivedAt *string `json:"archived_at"`
		URL        string  `json:"url"`
		ExpiresAt  *string `json:"expires_at"`
	} `json:"notifications"`
	UnreadCount int `json:"unread_count"`
	UnseenCount int `json:"unseen_count"`
}

func (e *env) centerInbox(user, query string) centerPage {
	e.t.Helper()
	status, _, body := e.do("GET", "/notifications"+query, e.token(user), nil)
	if status != 200 {
		e.t.Fatalf("inbox %s%s: %d %s", user, query, status, body)
	}
	var p centerPage
	decodeInto(e.t, body, &p)
	return p
}

func (p centerPage) ids() string {
	var s []string
	for _, n := range p.Notifications {
		s = append(s, n.ID)
	}
	return strings.Join(s, ",")
}

// TestStateRoutes walks every state route: its answer, the inbox after it,
// and the `state` event on every stream of the caller (SSE and WebSocket),
// without an id line and without moving the sequence.
func TestStateRoutes(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 4; i++ {
		e.mustPublish(fmt.Sprintf("n%d", i+1), 2, 3)
	}
	sse1, sse2 := e.stream("user2"), e.stream("user2")
	ws := mustDialWS(t, e, "user2", "?lastEventId=4")
	other := e.stream("user3")
	steps := []struct {
		path, body, answer, event string
	}{
		{"seen", `{"ids":["1",2,"99"]}`, `{"marked":2,"unread_count":4,"unseen_count":2}`, `{"op":"seen","ids":["1","2"],"unread_count":4,"unseen_count":2}`},
		{"read", `{"ids":[3]}`, `{"marked":1,"unread_count":3,"unseen_count":1}`, `{"op":"read","ids":["3"],"unread_count":3,"unseen_count":1}`},
		{"unread", `{"ids":[3]}`, `{"marked":1,"unread_count":4,"unseen_count":1}`, `{"op":"unread","ids":["3"],"unread_count":4,"unseen_count":1}`},
		{"archive", `{"ids":["4"]}`, `{"marked":1,"unread_count":3,"unseen_count":0}`, `{"op":"archive","ids":["4"],"unread_count":3,"unseen_count":0}`},
		{"unarchive", `{"ids":["4"]}`, `{"marked":1,"unread_count":3,"unseen_count":0}`, `{"op":"unarchive","ids":["4"],"unread_count":3,"unseen_count":0}`},
		{"delete", `{"ids":["1"]}`, `{"marked":1,"unread_count":2,"unseen_count":0}`, `{"op":"delete","ids":["1"],"unread_count":2,"unseen_count":0}`},
		{"read", `{"all":true}`, `{"marked":2,"unread_count":0,"unseen_count":0}`, `{"op":"read","all":true,"unread_count":0,"unseen_count":0}`},
	}
	for _, s := range steps {
		status, _, out := e.do("POST", "/notifications/"+s.path, e.token("user2"), json.RawMessage(s.body))
		if status != 200 || strings.TrimSpace(string(out)) != s.answer {
			t.Fatalf("POST /notifications/%s %s: %d %s; want %s", s.path, s.body, status, out, s.answer)
		}
		for name, st := range map[string]*heraldtest.Stream{"first": sse1, "second": sse2} {
			m := st.MustNext(t, wait)
			if m.Event != "state" || m.HasID || m.Data != s.event {
				t.Fatalf("%s stream after %s: %+v; want event state, no id, data %s", name, s.path, m, s.event)
			}
		}
		if f := readFrame(t, ws); f.Event != "state" || f.ID != "" || string(f.Data) != s.event {
			t.Fatalf("WebSocket after %s: %+v; want state %s", s.path, f, s.event)
		}
	}
	// A change that changes nothing sends nothing.
	if status, _, out := e.do("POST", "/notifications/seen", e.token("user2"), map[string]any{"ids": []string{"2"}}); status != 200 || !strings.Contains(string(out), `"marked":0`) {
		t.Fatalf("seen again: %d %s", status, out)
	}
	// The sequence goes on where it was: state events took no seq.
	e.mustPublish("n5", 2)
	if m := sse1.MustNext(t, wait); m.Event != "notification" || m.ID != "5" {
		t.Fatalf("after the state events: %+v, want notification 5", m)
	}
	other.ExpectQuiet(t, 100*time.Millisecond) // no state event of user2's
	p := e.centerInbox("user2", "")
	if p.ids() != "5,4,3,2" || p.UnreadCount != 1 || p.UnseenCount != 1 {
		t.Fatalf("inbox %s counts %d/%d", p.ids(), p.UnreadCount, p.UnseenCount)
	}
	if n := p.Notifications[1]; n.Archived || n.ArchivedAt != nil || !n.Seen || n.SeenAt == nil || !n.Read {
		t.Fatalf("unarchived item 4: %+v", n)
	}
	// Counts.
	if status, _, out := e.do("GET", "/notifications/counts", e.token("user2"), nil); status != 200 || strings.TrimSpace(string(out)) != `{"unread_count":1,"unseen_count":1}` {
		t.Fatalf("counts: %d %s", status, out)
	}
	if p := e.centerInbox("user3", ""); p.UnreadCount != 4 || p.UnseenCount != 4 {
		t.Fatalf("user2's changes reached user3: %+v", p)
	}
}

func TestCenterRoutesForEmployeesOnly(t *testing.T) {
	e := newEnv(t)
	svc := e.service()
	for _, r := range []struct{ method, path string }{
		{"GET", "/notifications/counts"}, {"GET", "/preferences"}, {"PUT", "/preferences"},
		{"POST", "/notifications/unread"}, {"POST", "/notifications/seen"}, {"POST", "/notifications/archive"},
		{"POST", "/notifications/unarchive"}, {"POST", "/notifications/delete"},
	} {
		var body any
		switch r.method {
		case "POST":
			body = map[string]any{"all": true}
		case "PUT":
			body = map[string]any{"muted": []string{}}
		}
		status, _, out := e.do(r.method, r.path, svc, body)
		if status != 403 || problem(t, out).Code != "forbidden" {
			t.Errorf("service %s %s: %d %s; want 403 forbidden", r.method, r.path, status, out)
		}
		if status, _, _ := e.do(r.method, r.path, "", body); status != 401 {
			t.Errorf("no token %s %s: %d; want 401", r.method, r.path, status)
		}
	}
	for _, bad := range []string{`{}`, `{"ids":"1"}`, `{"all":false}`, `{"ids":["x"]}`} {
		if status, _, out := e.do("POST", "/notifications/archive", e.token("user2"), json.RawMessage(bad)); status != 400 || problem(t, out).Code != "invalid_request" {
			t.Errorf("archive %s: %d %s", bad, status, out)
		}
	}
}

func TestInboxFilters(t *testing.T) {
	e := newEnv(t)
	for _, typ := range []string{"build.failed", "build.ok", "hr.leave"} {
		status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "type": typ, "title": typ})
		if status != 201 {
			t.Fatalf("publish: %d %s", status, out)
		}
	}
	e.do("POST", "/notifications/seen", e.token("user2"), map[string]any{"ids": []int{1}})
	e.do("POST", "/notifications/archive", e.token("user2"), map[string]any{"ids": []int{3}})
	for _, tt := range []struct{ query, want string }{
		{"", "2,1"}, {"?unseen=true", "2"}, {"?archived=true", "3"}, {"?type=build.*", "2,1"},
		{"?type=build.ok", "2"}, {"?type=build", ""}, {"?type=hr.*&archived=true", "3"}, {"?unseen=true&type=build.*&before=2", ""},
	} {
		if p := e.centerInbox("user2", tt.query); p.ids() != tt.want {
			t.Errorf("inbox%s = %q, want %q", tt.query, p.ids(), tt.want)
		}
	}
	for _, q := range []string{"?unseen=maybe", "?archived=2", "?type=Build", "?type=*", "?type=build*", "?type="} {
		status, _, out := e.do("GET", "/notifications"+q, e.token("user2"), nil)
		if status != 400 || problem(t, out).Code != "invalid_request" {
			t.Errorf("inbox%s: %d %s; want 400", q, status, out)
		}
	}
}

func TestPublishCenterFieldsValidation(t *testing.T) {
	e := newEnv(t)
	base := func(k string, v any) map[string]any {
		m := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x"}
		m[k] = v
		return m
	}
	soon := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	tests := []struct {
		name   string
		body   map[string]any
		fields string
	}{
		{"javascript url", base("url", "javascript:alert(1)"), "url"},
		{"data url", base("url", "data:text/html,x"), "url"},
		{"protocol-relative url", base("url", "//evil.example/x"), "url"},
		{"relative url", base("url", "requests/1"), "url"},
		{"ftp url", base("url", "ftp://files.example/x"), "url"},
		{"url without host", base("url", "https:///x"), "url"},
		{"url with space", base("url", "/a b"), "url"},
		{"url too long", base("url", "/"+strings.Repeat("a", 2048)), "url"},
		{"expires in the past", base("expires_at", soon(-time.Minute)), "expires_at"},
		{"expires too late", base("expires_at", soon(367*24*time.Hour)), "expires_at"},
		{"expires not a time", base("expires_at", "tomorrow"), "expires_at"},
		{"deliver too late", base("deliver_at", soon(31*24*time.Hour)), "deliver_at"},
		{"deliver not a time", base("deliver_at", "2026-13-01T00:00:00Z"), "deliver_at"},
		{"expires before delivery", func() map[string]any {
			m := base("deliver_at", soon(2*time.Hour))
			m["expires_at"] = soon(time.Hour)
			return m
		}(), "expires_at"},
		{"required not bool", base("required", "yes"), "required"},
		{"state event reserved", func() map[string]any { m := base("persist", false); m["event"] = "state"; return m }(), "event"},
		{"url on ephemeral", func() map[string]any { m := base("persist", false); m["url"] = "/x"; return m }(), "url"},
		{"deliver_at on ephemeral", func() map[string]any { m := base("persist", false); m["deliver_at"] = soon(time.Hour); return m }(), "deliver_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.publish(tt.body)
			if status != 400 {
				t.Fatalf("status %d %s, want 400", status, out)
			}
			if got := strings.Join(problem(t, out).Fields(), ","); got != tt.fields {
				t.Fatalf("fields %s, want %s (%s)", got, tt.fields, out)
			}
		})
	}
	if head, _ := e.Store.Head(t.Context(), 2); head != 0 {
		t.Fatalf("refused publishes stored %d notifications", head)
	}
	for _, ok := range []string{"https://intranet.example/r/1?x=1#y", "http://localhost:5173/", "/requests/481"} {
		if status, out := e.publish(base("url", ok)); status != 201 {
			t.Errorf("url %q: %d %s", ok, status, out)
		}
	}
}

// TestCenterFieldsOnTheWire: url and expires_at reach the stream and the
// inbox only when set; a notification without them keeps its bytes.
func TestCenterFieldsOnTheWire(t *testing.T) {
	e := newEnv(t)
	s := e.stream("user2")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x",
		"url": "/requests/481", "expires_at": exp.Format(time.RFC3339Nano)})
	if status != 201 {
		t.Fatalf("publish: %d %s", status, out)
	}
	m := s.MustNext(t, wait)
	want := fmt.Sprintf(`,"url":"/requests/481","expires_at":"%s"}`, exp.Format("2006-01-02T15:04:05.000Z07:00"))
	if !strings.HasSuffix(m.Data, want) {
		t.Fatalf("stream data %s; want it to end with %s", m.Data, want)
	}
	e.mustPublish("plain", 2)
	if m := s.MustNext(t, wait); strings.Contains(m.Data, "url") || strings.Contains(m.Data, "expires_at") || !strings.HasSuffix(m.Data, `"data":{},"created_at":"`+m.Data[len(m.Data)-26:]) {
		t.Fatalf("plain notification data %s", m.Data)
	}
	p := e.centerInbox("user2", "")
	if n := p.Notifications[1]; n.URL != "/requests/481" || n.ExpiresAt == nil || n.Seen || n.Archived {
		t.Fatalf("inbox item %+v", n)
	}
	if n := p.Notifications[0]; n.URL != "" || n.ExpiresAt != nil {
		t.Fatalf("plain inbox item %+v", n)
	}
}

func TestWithdraw(t *testing.T) {
	e := newEnv(t)
	s2 := e.stream("user2")
	e.mustPublish("first", 3)
	ans := e.mustPublish("oops", 2, 3) // employee 3's copy is its seq 2
	if m := s2.MustNext(t, wait); m.ID != "1" {
		t.Fatalf("got %+v", m)
	}
	other := e.token("other-service", "service")
	if status, _, out := e.do("DELETE", "/notifications/"+ans.ID, other, nil); status != 404 || problem(t, out).Code != "not_found" {
		t.Fatalf("another publisher withdraws: %d %s; want 404", status, out)
	}
	if status, _, out := e.do("DELETE", "/notifications/"+ans.ID, e.token("user2"), nil); status != 403 {
		t.Fatalf("an employee without a publisher role withdraws: %d %s; want 403", status, out)
	}
	for _, id := range []string{"999", "abc", "0"} {
		if status, _, out := e.do("DELETE", "/notifications/"+id, e.service(), nil); status != 404 {
			t.Fatalf("withdraw %s: %d %s; want 404", id, status, out)
		}
	}
	if status, _, out := e.do("DELETE", "/notifications/"+ans.ID, e.service(), nil); status != 204 || len(out) != 0 {
		t.Fatalf("withdraw: %d %s; want 204", status, out)
	}
	if m := s2.MustNext(t, wait); m.Event != "state" || m.HasID || m.Data != `{"op":"delete","ids":["1"],"unread_count":0,"unseen_count":0}` {
		t.Fatalf("after withdrawal: %+v", m)
	}
	if p := e.centerInbox("user3", ""); p.ids() != "1" || p.UnreadCount != 1 {
		t.Fatalf("user3 inbox after withdrawal: %s (%d)", p.ids(), p.UnreadCount)
	}
	if status, _, _ := e.do("DELETE", "/notifications/"+ans.ID, e.service(), nil); status != 404 {
		t.Fatalf("withdraw twice: %d; want 404", status)
	}
}

func TestPreferences(t *testing.T) {
	e := newEnv(t)
	tok := e.token("user2")
	if status, _, out := e.do("GET", "/preferences", tok, nil); status != 200 || strings.TrimSpace(string(out)) != `{"muted":[],"push":true}` {
		t.Fatalf("defaults: %d %s", status, out)
	}
	status, _, out := e.do("PUT", "/preferences", tok, map[string]any{"muted": []string{"marketing.*", "build.failed", "build.failed"}, "push": false})
	if status != 200 || strings.TrimSpace(string(out)) != `{"muted":["marketing.*","build.failed"],"push":false}` {
		t.Fatalf("put: %d %s", status, out)
	}
	if status, _, out := e.do("GET", "/preferences", tok, nil); status != 200 || strings.TrimSpace(string(out)) != `{"muted":["marketing.*","build.failed"],"push":false}` {
		t.Fatalf("get after put: %d %s", status, out)
	}
	for _, bad := range []any{
		map[string]any{"muted": []string{"Marketing"}}, map[string]any{"muted": []string{"*"}},
		map[string]any{"muted": make([]string, 101)}, map[string]any{"push": "no"}, map[string]any{"mute": []string{}},
	} {
		if status, _, out := e.do("PUT", "/preferences", tok, bad); status != 400 || problem(t, out).Code != "invalid_request" {
			t.Errorf("put %v: %d %s", bad, status, out)
		}
	}
	// Muted types are stored read and seen, not delivered live; required
	// overrides.
	s := e.stream("user2")
	for _, p := range []map[string]any{
		{"type": "marketing.weekly", "title": "muted"},
		{"type": "build.failed", "title": "required", "required": true},
	} {
		p["to"] = map[string]any{"employees": []int{2}}
		if status, out := e.publish(p); status != 201 {
			t.Fatalf("publish %v: %d %s", p, status, out)
		}
	}
	if m := s.MustNext(t, wait); m.ID != "2" || !strings.Contains(m.Data, `"title":"required"`) {
		t.Fatalf("live: %+v; want only the required one (2)", m)
	}
	p := e.centerInbox("user2", "")
	if p.ids() != "2,1" || p.UnreadCount != 1 || p.UnseenCount != 1 || !p.Notifications[1].Read || !p.Notifications[1].Seen {
		t.Fatalf("inbox with a muted notification: %+v", p)
	}
}

func TestScheduledDelivery(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.RunCenter(ctx, e.Store, store.CenterJobs{DueEvery: 20 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	s := e.stream("user2")
	// Far enough ahead that the checks before it run before it, even on a
	// loaded machine.
	at := time.Now().Add(3 * time.Second).UTC().Truncate(time.Millisecond)
	status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2, 77}}, "type": "a.b", "title": "later",
		"deliver_at": at.Format(time.RFC3339Nano)})
	want := fmt.Sprintf(`"recipients":1,"unknown":[77],"deliver_at":"%s"}`, at.Format("2006-01-02T15:04:05.000Z07:00"))
	if status != 201 || !strings.HasSuffix(strings.TrimSpace(string(out)), want) {
		t.Fatalf("scheduled publish: %d %s; want 201 ending %s", status, out, want)
	}
	if p := e.centerInbox("user2", ""); (len(p.Notifications) != 0 || p.UnreadCount != 0) && time.Now().Before(at) {
		t.Fatalf("before its time: %+v", p)
	}
	e.mustPublish("now", 2)
	if m := s.MustNext(t, wait); m.ID != "1" || !strings.Contains(m.Data, `"title":"now"`) {
		t.Fatalf("first event %+v; want now (1)", m)
	}
	m := s.MustNext(t, wait)
	if m.ID != "2" || !strings.Contains(m.Data, `"title":"later"`) || time.Now().Before(at) {
		t.Fatalf("second event %+v at %v; want later (2) at or after %v", m, time.Now(), at)
	}
	// Past or now: at once, without deliver_at in the answer.
	status, out = e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "past",
		"deliver_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	if status != 201 || strings.Contains(string(out), "deliver_at") {
		t.Fatalf("past deliver_at: %d %s", status, out)
	}
	if m := s.MustNext(t, wait); m.ID != "3" {
		t.Fatalf("past deliver_at delivered %+v; want 3 at once", m)
	}
}

// TestIdempotencyCoversCenterFields: the fingerprint covers the new fields
// and canonicalizes times.
func TestIdempotencyCoversCenterFields(t *testing.T) {
	e := newEnv(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x", "url": "/a",
		"expires_at": exp.Format(time.RFC3339)}
	if status, out := e.publish(body, "Idempotency-Key", "k1"); status != 201 {
		t.Fatalf("first: %d %s", status, out)
	}
	same := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "a.b", "title": "x", "url": "/a",
		"expires_at": exp.In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano), "required": false}
	status, _, _ := e.do(http.MethodPost, "/notifications", e.service(), same, "Idempotency-Key", "k1")
	if status != 201 {
		t.Fatalf("same meaning: %d; want the first answer", status)
	}
	for k, v := range map[string]any{"url": "/b", "required": true, "expires_at": exp.Add(time.Minute).Format(time.RFC3339)} {
		changed := map[string]any{}
		for bk, bv := range body {
			changed[bk] = bv
		}
		changed[k] = v
		if status, out := e.publish(changed, "Idempotency-Key", "k1"); status != 422 {
			t.Errorf("changed %s: %d %s; want 422", k, status, out)
		}
	}
}
