package main_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
)

// TestScheduledSurvivesRestart: a notification scheduled on a Herald that
// stops (gracefully) before its time is delivered by the next Herald on the
// same SQLite file, at its time, once, with the seq of its delivery.
func TestScheduledSurvivesRestart(t *testing.T) {
	env := []string{"JWT_SECRET=" + e2eSecret, "HEARTBEAT_INTERVAL=1s",
		"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "scheduled.db")}
	p := startHerald(t, []string{"serve"}, env...)
	putEmployees(t, p)
	svc := mint(t, "billing", "service")
	tok := mint(t, "user2")
	// Far enough ahead that the stop and the next start take place before
	// it: together they have taken 3 s under -race on a loaded 2-core
	// machine.
	at := time.Now().Add(4 * time.Second).UTC()
	status, out := publishTo(t, p, svc, "later", map[string]any{"deliver_at": at.Format(time.RFC3339Nano)})
	if status != 201 || !strings.Contains(string(out), `"deliver_at"`) {
		t.Fatalf("scheduled publish: %d %s; want 201 with deliver_at", status, out)
	}
	// Published after it, delivered before it: seq 1.
	if status, out := publishTo(t, p, svc, "now", nil); status != 201 {
		t.Fatalf("publish: %d %s", status, out)
	}
	stopHerald(t, p)
	if !time.Now().Before(at) {
		t.Fatalf("the first Herald stopped after the scheduled time (%v); nothing left to test", at)
	}

	q := startHerald(t, []string{"serve"}, env...)
	s := heraldtest.MustOpenStream(t, q.URL+"/events", tok, "Last-Event-ID", "1")
	opened := time.Now()
	if status, _, out := heraldtest.Do(t, "GET", q.URL+"/notifications/counts", tok, nil); status != 200 ||
		(strings.TrimSpace(string(out)) != `{"unread_count":1,"unseen_count":1}` && time.Now().Before(at)) {
		t.Fatalf("counts before its time: %d %s; want only the one delivered", status, out)
	}
	// Live if the stream opened before the time, by replay if a loaded
	// machine got there later: once either way.
	m, err := s.Next(15 * time.Second)
	arrived := time.Now()
	if err != nil {
		t.Fatalf("the scheduled notification did not reach the new Herald's stream: %v", err)
	}
	if m.Event != "notification" || m.ID != "2" || heraldtest.Title(t, m) != "later" {
		t.Fatalf("stream on the new Herald: %+v; want notification 2 \"later\"", m)
	}
	if arrived.Before(at) {
		t.Fatalf("delivered at %v, before its time %v", arrived, at)
	}
	// Due ones are looked for every 250 ms; 2 s leaves room for -race on a
	// loaded machine.
	if late := arrived.Sub(at); opened.Before(at) && late > 2*time.Second {
		t.Fatalf("delivered %v after its time; want at its time", late)
	} else if !opened.Before(at) {
		t.Logf("the new Herald's stream opened %v after the time: delivered by replay", opened.Sub(at))
	}
	s.ExpectQuiet(t, 500*time.Millisecond)
	status, _, out = heraldtest.Do(t, "GET", q.URL+"/notifications", tok, nil)
	if status != 200 {
		t.Fatalf("inbox: %d %s", status, out)
	}
	inbox := heraldtest.DecodeJSON[struct {
		Notifications []struct{ ID, Title string }
		UnreadCount   int `json:"unread_count"`
		UnseenCount   int `json:"unseen_count"`
	}](t, out)
	var got []string
	for _, n := range inbox.Notifications {
		got = append(got, n.ID+" "+n.Title)
	}
	if strings.Join(got, ", ") != "2 later, 1 now" || inbox.UnreadCount != 2 || inbox.UnseenCount != 2 {
		t.Fatalf("inbox %q, counts %d/%d; want [2 later, 1 now], 2/2", got, inbox.UnreadCount, inbox.UnseenCount)
	}
}
