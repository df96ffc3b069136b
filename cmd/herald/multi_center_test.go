package main_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestTwoInstancesState: a state change or a withdrawal made through one
// instance reaches the employee's streams on both, as `event: state`
// without an id.
func TestTwoInstancesState(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b, svc := startPair(t, db, db)
	tok := mint(t, "user2")
	onA := heraldtest.MustOpenStream(t, a.URL+"/events", tok)
	onB := heraldtest.MustOpenStream(t, b.URL+"/events", tok)
	status, out := publishTo(t, a, svc, "one", nil)
	if status != 201 {
		t.Fatalf("publish: %d %s", status, out)
	}
	id := heraldtest.DecodeJSON[struct{ ID string }](t, out).ID
	publishTo(t, a, svc, "two", nil)
	for _, s := range []*heraldtest.Stream{onA, onB} {
		s.MustNext(t, 10*time.Second)
		s.MustNext(t, 10*time.Second)
	}
	if status, _, out := heraldtest.Do(t, "POST", b.URL+"/notifications/seen", tok, map[string]any{"all": true}); status != 200 {
		t.Fatalf("seen on b: %d %s", status, out)
	}
	if status, _, out := heraldtest.Do(t, "DELETE", a.URL+"/notifications/"+id, svc, nil); status != 204 {
		t.Fatalf("withdraw on a: %d %s", status, out)
	}
	for name, s := range map[string]*heraldtest.Stream{"a": onA, "b": onB} {
		for _, want := range []string{
			`{"op":"seen","all":true,"unread_count":2,"unseen_count":0}`,
			`{"op":"delete","ids":["1"],"unread_count":1,"unseen_count":0}`,
		} {
			if m := s.MustNext(t, 10*time.Second); m.Event != "state" || m.HasID || m.Data != want {
				t.Fatalf("stream on %s: %+v; want state %s", name, m, want)
			}
		}
	}
}

// TestTwoInstancesScheduled: a scheduled notification is delivered once,
// by one of two instances sharing the database, and survives the
// instance that took it stopping before its time.
func TestTwoInstancesScheduled(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b, svc := startPair(t, db, db)
	tok := mint(t, "user2")
	onB := heraldtest.MustOpenStream(t, b.URL+"/events", tok)
	at := time.Now().Add(3 * time.Second).UTC()
	for i := range 5 {
		status, out := publishTo(t, a, svc, fmt.Sprintf("later %d", i), map[string]any{"deliver_at": at.Format(time.RFC3339Nano)})
		if status != 201 || !strings.Contains(string(out), `"deliver_at"`) {
			t.Fatalf("scheduled publish: %d %s", status, out)
		}
	}
	// a stops before the time: b delivers.
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exited:
		a.exited <- err // for the cleanup, which waits for it too
	case <-time.After(15 * time.Second):
		t.Fatal("instance a did not stop")
	}
	b2 := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "HEARTBEAT_INTERVAL=1s", "DATABASE_URL="+db)
	// b2 may start after the time (a loaded machine): it resumes from the
	// start, so the copies reach it by replay or live, each once, either way.
	onB2 := heraldtest.MustOpenStream(t, b2.URL+"/events", tok, "Last-Event-ID", "0")
	for name, s := range map[string]*heraldtest.Stream{"b": onB, "b2": onB2} {
		for i := range 5 {
			m := s.MustNext(t, 15*time.Second)
			if m.ID != fmt.Sprint(i+1) || heraldtest.Title(t, m) != fmt.Sprintf("later %d", i) {
				t.Fatalf("stream on %s: event %d = %s %q", name, i, m.ID, heraldtest.Title(t, m))
			}
		}
		s.ExpectQuiet(t, 500*time.Millisecond)
	}
	if time.Now().Before(at) {
		t.Fatalf("delivered before its time")
	}
	status, _, out := heraldtest.Do(t, "GET", b.URL+"/notifications/counts", tok, nil)
	if status != 200 || strings.TrimSpace(string(out)) != `{"unread_count":5,"unseen_count":5}` {
		t.Fatalf("counts: %d %s; want 5 copies, each once", status, out)
	}
}
