package sqlite_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// streamsSink is a Recorder that, like the hub, has streams for some
// employees only, and ends a removed employee's streams when told.
type streamsSink struct {
	*storetest.Recorder
	mu     sync.Mutex
	online map[int64]bool
	// deleting, when set, is called for a deleted employee before their
	// streams end (while the delete is under way).
	deleting func(id int64)
}

func (s *streamsSink) Connected(ids []int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, id := range ids {
		if s.online[id] {
			out = append(out, id)
		}
	}
	return out
}

func (s *streamsSink) EmployeeChanged(id int64, deleted bool) {
	if deleted && s.deleting != nil {
		s.deleting(id)
	}
	if deleted {
		s.mu.Lock()
		delete(s.online, id)
		s.mu.Unlock()
	}
	s.Recorder.EmployeeChanged(id, deleted)
}

// An ephemeral message to employees who are all online is answered without
// reading the directory; the answer and the delivery are the ones the
// directory gives: every target counted once, sorted, none unknown. With
// one target offline, or after an employee's deletion, the directory
// decides.
func TestEphemeralToOnlineEmployees(t *testing.T) {
	db := MustOpen(t)
	storetest.Seed(t, db, 3, 0)
	sink := &streamsSink{Recorder: storetest.NewRecorder(), online: map[int64]bool{1: true, 2: true}}
	listen(t, db, sink)
	ctx := context.Background()
	publish := func(ids ...int64) store.PublishResult {
		t.Helper()
		m := store.Message{To: store.Targets{Employees: ids}, Type: "typing", Title: "t", Event: "typing"}
		res, err := db.PublishEphemeral(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	last := func() []int64 {
		e := sink.Ephemerals()
		return e[len(e)-1].Employees
	}
	cases := []struct {
		name       string
		to         []int64
		recipients int
		unknown    []int64
		delivered  []int64
	}{
		{"online, repeated", []int64{2, 1, 2}, 2, nil, []int64{1, 2}},
		{"one offline", []int64{1, 3}, 2, nil, []int64{1, 3}},
		{"one unknown", []int64{1, 50}, 1, []int64{50}, []int64{1}},
	}
	for _, c := range cases {
		res := publish(c.to...)
		if res.Recipients != c.recipients || !slices.Equal(res.Unknown.Employees, c.unknown) || res.NotificationID != 0 {
			t.Errorf("%s: PublishEphemeral(%v) = %+v; want %d recipients, unknown %v", c.name, c.to, res, c.recipients, c.unknown)
		}
		if got := last(); !slices.Equal(got, c.delivered) {
			t.Errorf("%s: delivered to %v, want %v", c.name, got, c.delivered)
		}
	}
	if err := db.DeleteEmployee(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if res := publish(2); res.Recipients != 0 || !slices.Equal(res.Unknown.Employees, []int64{2}) {
		t.Errorf("after deleting employee 2: %+v; want 0 recipients, 2 unknown", res)
	}
}

// An ephemeral message to employees who are all online is answered from
// their open streams alone: the directory is not read. A delete made by
// another process (the CLI beside a running server) is therefore not seen
// while the employee's streams stay open, as the fast path documents; once
// they are gone, or when the message names more than employees, the
// directory decides. (Each of onlineTargets' conditions, inverted, sends
// such a message to the directory, which answers "unknown".)
func TestEphemeralOnlineSkipsTheDirectory(t *testing.T) {
	db := MustOpen(t)
	storetest.Seed(t, db, 3, 0)
	sink := &streamsSink{Recorder: storetest.NewRecorder(), online: map[int64]bool{1: true, 2: true, 3: true}}
	listen(t, db, sink)
	ctx := context.Background()
	cli, err := sqlite.Open(ctx, "sqlite:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.DeleteEmployee(ctx, 2); err != nil {
		t.Fatal(err)
	}
	publish := func(to store.Targets) store.PublishResult {
		t.Helper()
		res, err := db.PublishEphemeral(ctx, store.Message{To: to, Type: "typing", Title: "t", Event: "typing"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	last := func() []int64 {
		e := sink.Ephemerals()
		return e[len(e)-1].Employees
	}
	// While this process deletes employee 3, whose streams are still open,
	// the directory decides: 3 is unknown.
	var during store.PublishResult
	sink.deleting = func(int64) { during = publish(store.Targets{Employees: []int64{3}}) }
	if err := db.DeleteEmployee(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if during.Recipients != 0 || !slices.Equal(during.Unknown.Employees, []int64{3}) {
		t.Errorf("to employee 3 while their delete is under way: %+v; want 0 recipients, 3 unknown", during)
	}
	if res := publish(store.Targets{Employees: []int64{2, 1}}); res.Recipients != 2 || len(res.Unknown.Employees) != 0 {
		t.Errorf("to online employees 1 and 2 (2 deleted by another process): %+v; want 2 recipients from the open streams, none unknown", res)
	}
	if got := last(); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("delivered to %v, want [1 2] (the open streams)", got)
	}
	// Not employees only: the directory decides, and 2 is gone from it.
	for name, to := range map[string]store.Targets{
		"and an email": {Employees: []int64{2}, Emails: []string{"user1@corp.example"}},
		"and a role":   {Employees: []int64{2}, Roles: []string{"staff"}},
		"and everyone": {Employees: []int64{2}, All: true},
	} {
		if res := publish(to); res.Recipients != 1 || !slices.Equal(res.Unknown.Employees, []int64{2}) {
			t.Errorf("%s: %+v; want 1 recipient (employee 1) and 2 unknown", name, res)
		}
	}
}
