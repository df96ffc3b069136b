package sqlite_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/storetest"
)

// streamsSink is a Recorder that, like the hub, has streams for some
// employees only, and ends a removed employee's streams when told.
type streamsSink struct {
	*storetest.Recorder
	mu     sync.Mutex
	online map[int64]bool
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
