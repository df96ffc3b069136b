package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// recount counts the employee's unread and unseen items by listing the
// inbox (which leaves out archived and expired items), independently of
// how the store keeps its counts.
func recount(t testing.TB, st store.Store, employee int64) store.Counts {
	t.Helper()
	var c store.Counts
	q := store.InboxQuery{Employee: employee, Limit: 100}
	for {
		p := page(t, st, q)
		for _, it := range p.Items {
			if it.ReadAt == nil {
				c.Unread++
			}
			if it.SeenAt == nil {
				c.Unseen++
			}
		}
		if len(p.Items) < q.Limit {
			return c
		}
		q.Before = p.Items[len(p.Items)-1].Seq
	}
}

// testCountsKept: the counts stay what the inbox holds across every kind
// of write: publishes (muted, required), every state change by ids and
// with all, expiry, scheduled delivery, withdrawal, the retention sweep,
// and an employee deleted and created again.
func testCountsKept(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	if err := st.SetPreferences(ctx(), 2, store.Preferences{Muted: []string{"quiet.*"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		for e := int64(1); e <= 3; e++ {
			want := recount(t, st, e)
			if got := mustCounts(t, st, e); got != want {
				t.Fatalf("%s: employee %d counts %+v, the inbox holds %+v", step, e, got, want)
			}
		}
	}
	state := func(e int64, op store.StateOp, s []int64, all bool) {
		t.Helper()
		_, c := mustState(t, st, e, op, s, all)
		if want := recount(t, st, e); c != want {
			t.Fatalf("%s %v (all %v) of %d answered counts %+v, the inbox holds %+v", op, s, all, e, c, want)
		}
		check(fmt.Sprintf("after %s %v (all %v) of %d", op, s, all, e))
	}
	all := store.Targets{Employees: []int64{1, 2, 3}}
	for i := range 5 {
		mustPublish(t, st, msg(fmt.Sprint("n", i), all)) // seqs 1…5
	}
	quiet := msg("quiet", store.Targets{Employees: []int64{1, 2}})
	quiet.Type = "quiet.digest"
	mustPublish(t, st, quiet) // 6: muted for 2
	quiet.Required = true
	mustPublish(t, st, quiet) // 7: required, counts for 2
	check("after publishing")

	state(1, store.OpRead, []int64{1, 2}, false)
	state(1, store.OpSeen, []int64{3}, false)
	state(1, store.OpArchive, []int64{4}, false)
	state(1, store.OpUnread, []int64{1, 4}, false) // 4 is archived: unread, still not counted
	state(1, store.OpUnarchive, []int64{4}, false)
	state(1, store.OpDelete, []int64{5}, false)
	state(1, store.OpRead, []int64{999}, false) // not there: nothing changes
	state(2, store.OpArchive, nil, true)
	state(2, store.OpUnarchive, []int64{1, 2}, false)
	state(2, store.OpUnread, nil, true)
	state(2, store.OpSeen, nil, true)
	state(3, store.OpRead, nil, true)
	state(3, store.OpUnread, []int64{2}, false)
	state(3, store.OpDelete, nil, true)

	// Expiry: counted until it expires, and after the sweep deletes it.
	soon := time.Now().Add(time.Second)
	brief := msg("brief", all)
	brief.ExpiresAt = &soon
	mustPublish(t, st, brief)
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	check("after expiry")
	if _, err := st.Sweep(ctx(), time.Time{}, 100); err != nil {
		t.Fatal(err)
	}
	check("after sweeping the expired")

	// Scheduled delivery.
	at := time.Now().Add(time.Second)
	later := msg("later", all)
	later.DeliverAt = &at
	mustPublish(t, st, later)
	check("while scheduled")
	time.Sleep(time.Until(at) + 50*time.Millisecond)
	if n, err := st.DeliverDue(ctx(), 10); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v; want 1", n, err)
	}
	check("after delivery")

	// Withdrawal of a notification some have read.
	owned := msg("owned", all)
	owned.Owner = "svc"
	res := mustPublish(t, st, owned)
	state(1, store.OpRead, nil, true)
	if err := st.Withdraw(ctx(), "svc", res.NotificationID); err != nil {
		t.Fatal(err)
	}
	check("after withdrawal")

	// An employee deleted and created again starts from nothing.
	if err := st.DeleteEmployee(ctx(), 3); err != nil {
		t.Fatal(err)
	}
	Seed(t, st, 3, 0)
	mustPublish(t, st, msg("again", store.Targets{Employees: []int64{3}}))
	if c := mustCounts(t, st, 3); c != (store.Counts{Unread: 1, Unseen: 1}) {
		t.Fatalf("employee 3 created again: counts %+v, want 1/1", c)
	}
	check("after deleting and creating employee 3")

	// The retention sweep of everything.
	for {
		c, err := st.Sweep(ctx(), time.Now().Add(time.Hour), 2)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rows == 0 {
			break
		}
	}
	check("after the retention sweep")
	for e := int64(1); e <= 3; e++ {
		if c := mustCounts(t, st, e); c != (store.Counts{}) {
			t.Fatalf("employee %d counts %+v after everything was swept", e, c)
		}
	}
}
