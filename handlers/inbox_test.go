package handlers_test

import (
	"fmt"
	"strings"
	"testing"
)

type inboxPage struct {
	Notifications []struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Title     string         `json:"title"`
		Body      string         `json:"body"`
		Data      map[string]any `json:"data"`
		CreatedAt string         `json:"created_at"`
		Read      bool           `json:"read"`
		ReadAt    *string        `json:"read_at"`
	} `json:"notifications"`
	UnreadCount int    `json:"unread_count"`
	NextBefore  string `json:"next_before"`
}

func (e *env) inbox(user, query string) inboxPage {
	e.t.Helper()
	status, _, body := e.do("GET", "/notifications"+query, e.token(user), nil)
	if status != 200 {
		e.t.Fatalf("inbox %s%s: %d %s", user, query, status, body)
	}
	var p inboxPage
	decodeInto(e.t, body, &p)
	return p
}

func ids(p inboxPage) string {
	var s []string
	for _, n := range p.Notifications {
		s = append(s, n.ID)
	}
	return strings.Join(s, ",")
}

func TestInboxPaging(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 7; i++ {
		e.mustPublish(fmt.Sprintf("n%d", i), 2)
	}
	e.mustPublish("not yours", 3)
	p := e.inbox("user2", "?limit=3")
	if ids(p) != "7,6,5" || p.UnreadCount != 7 || p.NextBefore != "5" {
		t.Fatalf("page 1 = %s unread %d next %q", ids(p), p.UnreadCount, p.NextBefore)
	}
	n := p.Notifications[0]
	if n.Title != "n7" || n.Type != "test.note" || n.Read || n.ReadAt != nil || n.Data == nil || n.CreatedAt == "" {
		t.Fatalf("item = %+v", n)
	}
	p = e.inbox("user2", "?limit=3&before="+p.NextBefore)
	if ids(p) != "4,3,2" || p.NextBefore != "2" {
		t.Fatalf("page 2 = %s next %q", ids(p), p.NextBefore)
	}
	p = e.inbox("user2", "?limit=3&before=2")
	if ids(p) != "1" || p.NextBefore != "" {
		t.Fatalf("page 3 = %s next %q", ids(p), p.NextBefore)
	}
	if p := e.inbox("user2", ""); len(p.Notifications) != 7 {
		t.Fatalf("default page has %d items", len(p.Notifications))
	}
	if p := e.inbox("user5", ""); ids(p) != "" || p.UnreadCount != 0 || !strings.Contains(fmt.Sprint(p.Notifications), "[]") {
		t.Fatalf("empty inbox = %+v", p)
	}
}

func TestInboxQueryValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, field string }{
		{"?limit=0", "limit"}, {"?limit=201", "limit"}, {"?limit=x", "limit"},
		{"?before=0", "before"}, {"?before=-4", "before"}, {"?before=abc", "before"},
		{"?unread=maybe", "unread"},
	} {
		status, _, body := e.do("GET", "/notifications"+tc.query, e.token("user2"), nil)
		if p := problem(t, body); status != 400 || p.Code != "invalid_request" || p.Fields()[0] != tc.field {
			t.Errorf("%s: %d %s", tc.query, status, body)
		}
	}
	status, _, body := e.do("GET", "/notifications", e.service(), nil)
	if status != 403 || problem(t, body).Code != "forbidden" {
		t.Fatalf("service reads an inbox: %d %s", status, body)
	}
}

func TestMarkRead(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 4; i++ {
		e.mustPublish("x", 2, 3)
	}
	read := func(user string, body any) (int, string) {
		status, _, out := e.do("POST", "/notifications/read", e.token(user), body)
		return status, strings.TrimSpace(string(out))
	}
	if status, out := read("user2", map[string]any{"ids": []any{"1", 2, "99"}}); status != 200 || out != `{"marked":2,"unread_count":2,"unseen_count":2}` {
		t.Fatalf("mark ids: %d %s", status, out)
	}
	p := e.inbox("user2", "?unread=true")
	if ids(p) != "4,3" || p.UnreadCount != 2 {
		t.Fatalf("unread after marking = %s (%d)", ids(p), p.UnreadCount)
	}
	if p := e.inbox("user2", "?limit=1&before=2"); !p.Notifications[0].Read || p.Notifications[0].ReadAt == nil {
		t.Fatalf("read item = %+v", p.Notifications[0])
	}
	// Employee 3's copies share ids 1..4 in their own sequence: untouched.
	if p := e.inbox("user3", ""); p.UnreadCount != 4 {
		t.Fatalf("user2's marks changed user3's inbox: unread %d", p.UnreadCount)
	}
	if status, out := read("user2", map[string]any{"all": true}); status != 200 || out != `{"marked":2,"unread_count":0,"unseen_count":0}` {
		t.Fatalf("mark all: %d %s", status, out)
	}
	for _, bad := range []any{
		map[string]any{}, map[string]any{"ids": []string{"1"}, "all": true}, map[string]any{"all": false},
		map[string]any{"ids": []string{"abc"}}, map[string]any{"ids": []any{1.5}}, map[string]any{"ids": "1"},
		map[string]any{"ids": make([]int, 1001)},
	} {
		if status, out := read("user2", bad); status != 400 || !strings.Contains(out, `"invalid_request"`) {
			t.Errorf("body %v: %d %s", bad, status, out)
		}
	}
}
