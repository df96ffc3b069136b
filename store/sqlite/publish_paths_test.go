package sqlite_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/storetest"
)

// A persisted publish takes one of three paths: employees by ID alone (the
// seq bump finds who exists), everyone alone (the bump takes every
// employee), or the directory read first. Each gives the same answer, the
// same live recipients and the same stored copies, muted ones included:
// one recipient, several, and everyone.
func TestPublishPaths(t *testing.T) {
	db := MustOpen(t)
	storetest.Seed(t, db, 3, 0)
	sink := storetest.NewRecorder()
	listen(t, db, sink)
	ctx := context.Background()
	if err := db.SetPreferences(ctx, 2, store.Preferences{Muted: []string{"news.*"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		to        store.Targets
		typ       string
		required  bool
		answer    string // recipients and unknown
		delivered string // employee:seq, live only
	}{
		{"one", store.Targets{Employees: []int64{1}}, "news.daily", false, "1 {[] []}", "[1:1]"},
		{"one muted", store.Targets{Employees: []int64{2}}, "news.daily", false, "1 {[] []}", "[]"},
		{"one muted, required", store.Targets{Employees: []int64{2}}, "news.daily", true, "1 {[] []}", "[2:2]"},
		{"one unknown", store.Targets{Employees: []int64{99, 99}}, "news.daily", false, "0 {[99] []}", "[]"},
		{"several, a duplicate and an unknown", store.Targets{Employees: []int64{3, 2, 98, 3}}, "news.daily", false, "2 {[98] []}", "[3:1]"},
		{"everyone", store.Targets{All: true}, "news.daily", false, "3 {[] []}", "[1:2 3:2]"},
		{"everyone, a role", store.Targets{All: true, Roles: []string{"nobody"}}, "other", false, "3 {[] []}", "[1:3 2:5 3:3]"},
		{"everyone and an unknown email", store.Targets{All: true, Emails: []string{"no@example.com"}}, "news.x", false, "3 {[] [no@example.com]}", "[1:4 3:4]"},
	}
	for i, c := range cases {
		m := store.Message{To: c.to, Type: c.typ, Title: c.name, Required: c.required}
		res, err := db.Publish(ctx, m, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := fmt.Sprintf("%d {%v %v}", res.Recipients, orEmpty(res.Unknown.Employees), orEmpty(res.Unknown.Emails)); got != c.answer {
			t.Errorf("%s: answer %s, want %s", c.name, got, c.answer)
		}
		var live []string
		if res.Recipients > 0 && c.delivered != "[]" {
			sink.Wait(t, c.name, func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool {
				return slices.ContainsFunc(d, func(d store.Delivery) bool { return d.Notification.ID == res.NotificationID })
			})
		}
		for _, d := range sink.Deliveries() {
			if d.Notification.ID == res.NotificationID {
				for _, r := range d.Recipients {
					live = append(live, fmt.Sprintf("%d:%d", r.Employee, r.Seq))
				}
			}
		}
		if got := fmt.Sprint(orEmpty(live)); got != c.delivered {
			t.Errorf("%s (publish %d): delivered to %s, want %s", c.name, i, got, c.delivered)
		}
	}
	// Employee 2's copies: seq 1 muted (stored read and seen), 2 required,
	// 3 and 4 muted, 5 not muted ("other"), 6 muted ("news.x").
	p, err := db.Inbox(ctx, store.InboxQuery{Employee: 2, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range p.Items {
		got = append(got, fmt.Sprintf("%d:%s:read=%t:seen=%t", it.Seq, it.Notification.Title, it.ReadAt != nil, it.SeenAt != nil))
	}
	want := []string{
		"6:everyone and an unknown email:read=true:seen=true",
		"5:everyone, a role:read=false:seen=false",
		"4:everyone:read=true:seen=true",
		"3:several, a duplicate and an unknown:read=true:seen=true",
		"2:one muted, required:read=false:seen=false",
		"1:one muted:read=true:seen=true",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("employee 2's inbox:\n%v\nwant\n%v", got, want)
	}
	since, err := db.Since(ctx, 2, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, it := range since {
		seqs = append(seqs, it.Seq)
	}
	if !slices.Equal(seqs, []int64{2, 5}) {
		t.Fatalf("Since(2, 0) = %v, want [2 5] (muted copies are not replayed)", seqs)
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
