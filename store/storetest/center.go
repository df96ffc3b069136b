package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

func mustState(t testing.TB, st store.Store, employee int64, op store.StateOp, seqs []int64, all bool) (int, store.Counts) {
	t.Helper()
	n, c, err := st.SetState(ctx(), employee, op, seqs, all)
	if err != nil {
		t.Fatalf("SetState(%d, %s, %v, %v): %v", employee, op, seqs, all, err)
	}
	return n, c
}

func mustCounts(t testing.TB, st store.Store, employee int64) store.Counts {
	t.Helper()
	c, err := st.Counts(ctx(), employee)
	if err != nil {
		t.Fatalf("Counts(%d): %v", employee, err)
	}
	return c
}

func page(t testing.TB, st store.Store, q store.InboxQuery) store.InboxPage {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	p, err := st.Inbox(ctx(), q)
	if err != nil {
		t.Fatalf("Inbox(%+v): %v", q, err)
	}
	return p
}

func seqs(items []store.InboxItem) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = it.Seq
	}
	return out
}

// testStateTransitions walks every operation, checking what changed, the
// counts, the items' fields and the changes handed to the sink.
func testStateTransitions(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	for i := 1; i <= 5; i++ {
		mustPublish(t, st, msg(fmt.Sprintf("n%d", i), store.Targets{Employees: []int64{1}}))
	}
	if c := mustCounts(t, st, 1); c != (store.Counts{Unread: 5, Unseen: 5}) {
		t.Fatalf("counts after 5 publishes = %+v, want 5/5", c)
	}
	steps := []struct {
		op      store.StateOp
		seqs    []int64
		all     bool
		changed int
		want    store.Counts
	}{
		{store.OpSeen, []int64{1, 2, 2, 99}, false, 2, store.Counts{Unread: 5, Unseen: 3}},
		{store.OpSeen, []int64{1}, false, 0, store.Counts{Unread: 5, Unseen: 3}},
		{store.OpRead, []int64{3}, false, 1, store.Counts{Unread: 4, Unseen: 2}}, // read implies seen
		{store.OpUnread, []int64{3, 4}, false, 1, store.Counts{Unread: 5, Unseen: 2}},
		{store.OpArchive, []int64{4, 5}, false, 2, store.Counts{Unread: 3, Unseen: 0}},
		{store.OpArchive, []int64{4}, false, 0, store.Counts{Unread: 3, Unseen: 0}},
		{store.OpUnarchive, []int64{5}, false, 1, store.Counts{Unread: 3, Unseen: 0}},
		{store.OpUnread, []int64{5}, false, 1, store.Counts{Unread: 4, Unseen: 0}},
		{store.OpDelete, []int64{1}, false, 1, store.Counts{Unread: 3, Unseen: 0}},
		{store.OpRead, nil, true, 3, store.Counts{Unread: 0, Unseen: 0}},
	}
	for i, s := range steps {
		changed, c := mustState(t, st, 1, s.op, s.seqs, s.all)
		if changed != s.changed || c != s.want {
			t.Fatalf("step %d %s %v all=%v: changed %d counts %+v; want %d, %+v", i, s.op, s.seqs, s.all, changed, c, s.changed, s.want)
		}
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); !slices.Equal(seqs(p.Items), []int64{5, 3, 2}) {
		t.Fatalf("inbox = %v, want 5,3,2 (1 deleted, 4 archived)", seqs(p.Items))
	}
	p := page(t, st, store.InboxQuery{Employee: 1, Archived: true})
	if !slices.Equal(seqs(p.Items), []int64{4}) {
		t.Fatalf("archived = %v, want 4", seqs(p.Items))
	}
	if it := p.Items[0]; it.ArchivedAt == nil || it.ReadAt == nil || it.SeenAt == nil {
		t.Fatalf("archived item = %+v; want archived, read and seen times", it)
	}
	// Every change that changed something reached the sink, in order.
	states := h.Sink.WaitStates(t, 8)
	var got []string
	for _, c := range states {
		if c.Employee != 1 {
			t.Fatalf("state change for employee %d: %+v", c.Employee, c)
		}
		got = append(got, fmt.Sprintf("%s%v%v:%d/%d", c.Op, c.Seqs, c.All, c.Counts.Unread, c.Counts.Unseen))
	}
	want := []string{"seen[1 2]false:5/3", "read[3]false:4/2", "unread[3]false:5/2", "archive[4 5]false:3/0",
		"unarchive[5]false:3/0", "unread[5]false:4/0", "delete[1]false:3/0", "read[]true:0/0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("state changes\n got %v\nwant %v", got, want)
	}
}

// testStateOthersIgnored: ids of another employee are ignored and "all"
// touches only the caller's inbox.
func testStateOthersIgnored(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	for i := 0; i < 3; i++ {
		mustPublish(t, st, msg("x", store.Targets{Employees: []int64{2}}))
	}
	mustPublish(t, st, msg("mine", store.Targets{Employees: []int64{1}}))
	for _, op := range store.StateOps {
		if changed, _ := mustState(t, st, 1, op, []int64{2, 3}, false); changed != 0 {
			t.Fatalf("%s of seqs employee 1 does not have changed %d", op, changed)
		}
	}
	for _, op := range []store.StateOp{store.OpArchive, store.OpDelete} {
		mustState(t, st, 1, op, nil, true)
	}
	if c := mustCounts(t, st, 2); c != (store.Counts{Unread: 3, Unseen: 3}) {
		t.Fatalf("employee 2 counts = %+v after employee 1's changes; want 3/3", c)
	}
	if p := page(t, st, store.InboxQuery{Employee: 2}); len(p.Items) != 3 {
		t.Fatalf("employee 2 has %d items, want 3", len(p.Items))
	}
	for _, c := range h.Sink.States() {
		if c.Employee != 1 {
			t.Fatalf("a change of employee 1 went to employee %d", c.Employee)
		}
	}
}

func testInboxFilters(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	for _, typ := range []string{"build.failed", "build.ok", "buildx", "hr.leave"} {
		m := msg(typ, store.Targets{Employees: []int64{1}})
		m.Type = typ
		mustPublish(t, st, m)
	}
	mustState(t, st, 1, store.OpSeen, []int64{1}, false)
	mustState(t, st, 1, store.OpRead, []int64{2}, false)
	mustState(t, st, 1, store.OpArchive, []int64{4}, false)
	tests := []struct {
		q    store.InboxQuery
		want []int64
	}{
		{store.InboxQuery{}, []int64{3, 2, 1}},
		{store.InboxQuery{Type: "build.*"}, []int64{2, 1}},
		{store.InboxQuery{Type: "build.ok"}, []int64{2}},
		{store.InboxQuery{Type: "build"}, nil},
		{store.InboxQuery{UnseenOnly: true}, []int64{3}},
		{store.InboxQuery{UnreadOnly: true}, []int64{3, 1}},
		{store.InboxQuery{Archived: true}, []int64{4}},
		{store.InboxQuery{Archived: true, Type: "hr.*"}, []int64{4}},
		{store.InboxQuery{UnreadOnly: true, Type: "build.*", Before: 2}, []int64{1}},
		{store.InboxQuery{UnreadOnly: true, Type: "build.failed"}, []int64{1}},
		{store.InboxQuery{UnseenOnly: true, Type: "buildx"}, []int64{3}},
		{store.InboxQuery{Type: "hr.leave"}, nil},
		{store.InboxQuery{Archived: true, Type: "hr.leave"}, []int64{4}},
	}
	for _, tt := range tests {
		tt.q.Employee = 1
		p := page(t, st, tt.q)
		if !slices.Equal(seqs(p.Items), tt.want) {
			t.Errorf("Inbox(%+v) = %v, want %v", tt.q, seqs(p.Items), tt.want)
		}
		if p.UnreadCount != 2 || p.UnseenCount != 1 {
			t.Errorf("Inbox(%+v) counts %d/%d, want 2/1", tt.q, p.UnreadCount, p.UnseenCount)
		}
	}
}

func testPreferences(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	p, err := st.Preferences(ctx(), 1)
	if err != nil || !p.Push || p.Muted == nil || len(p.Muted) != 0 {
		t.Fatalf("default preferences = %+v, %v; want push on, nothing muted", p, err)
	}
	want := store.Preferences{Muted: []string{"marketing.*", "build.failed"}, Push: false}
	if err := st.SetPreferences(ctx(), 1, want); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Preferences(ctx(), 1); fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("preferences = %+v, want %+v", p, want)
	}
	if p, _ := st.Preferences(ctx(), 2); !p.Push || len(p.Muted) != 0 {
		t.Fatalf("employee 2 preferences = %+v; want the defaults", p)
	}
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Push: true}); err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Preferences(ctx(), 1); !p.Push || p.Muted == nil || len(p.Muted) != 0 {
		t.Fatalf("replaced preferences = %+v; want push on, nothing muted", p)
	}
}

func testMutedPublish(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Muted: []string{"marketing.*", "build.failed"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	publish := func(typ string, required bool) {
		m := msg(typ, store.Targets{Employees: []int64{1, 2}})
		m.Type, m.Required = typ, required
		mustPublish(t, st, m)
	}
	publish("marketing.weekly", false) // seq 1: muted for 1
	publish("build.failed", true)      // seq 2: required
	publish("marketing", false)        // seq 3: not matched by marketing.*
	publish("build.failed", false)     // seq 4: muted for 1
	h.Sink.Wait(t, "4 deliveries", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) >= 4 })
	var live []string
	for _, d := range h.Sink.Deliveries() {
		for _, r := range d.Recipients {
			live = append(live, fmt.Sprintf("%d:%d", r.Employee, r.Seq))
		}
	}
	if want := "[2:1 1:2 2:2 1:3 2:3 2:4]"; fmt.Sprint(live) != want {
		t.Fatalf("live recipients %v, want %s (employee 1's muted copies not delivered)", live, want)
	}
	if c := mustCounts(t, st, 1); c != (store.Counts{Unread: 2, Unseen: 2}) {
		t.Fatalf("employee 1 counts = %+v, want 2/2 (muted copies stored read and seen)", c)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); !slices.Equal(seqs(p.Items), []int64{4, 3, 2, 1}) || p.Items[0].ReadAt == nil || p.Items[0].SeenAt == nil {
		t.Fatalf("employee 1 inbox = %v (first %+v); want all four kept, the muted ones read and seen", seqs(p.Items), p.Items[0])
	}
	since, err := st.Since(ctx(), 1, 0, 10)
	if err != nil || !slices.Equal(seqs(since), []int64{2, 3}) {
		t.Fatalf("Since(1, 0) = %v, %v; want 2,3 (muted copies are not replayed)", seqs(since), err)
	}
}

func testExpiry(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	// 3 s: the two publishes and the reads before the expiry must come
	// before it on a loaded machine too (300 ms did not under the race
	// detector at a load of 40).
	soon := time.Now().Add(3 * time.Second)
	m := msg("brief", store.Targets{Employees: []int64{1}})
	m.ExpiresAt = &soon
	mustPublish(t, st, m)
	mustPublish(t, st, msg("lasting", store.Targets{Employees: []int64{1}}))
	if c := mustCounts(t, st, 1); c.Unread != 2 {
		t.Fatalf("before expiry: unread %d, want 2", c.Unread)
	}
	p := page(t, st, store.InboxQuery{Employee: 1})
	if len(p.Items) != 2 || p.Items[1].Notification.ExpiresAt == nil || !p.Items[1].Notification.ExpiresAt.Equal(soon.Truncate(time.Millisecond)) {
		t.Fatalf("before expiry: items %+v; want both, the first with its expiry", p.Items)
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	if c := mustCounts(t, st, 1); c != (store.Counts{Unread: 1, Unseen: 1}) {
		t.Fatalf("after expiry: counts %+v, want 1/1", c)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "lasting" {
		t.Fatalf("after expiry: inbox %s, want lasting", titles(p.Items))
	}
	if since, _ := st.Since(ctx(), 1, 0, 10); titles(since) != "lasting" {
		t.Fatalf("after expiry: Since = %s, want lasting", titles(since))
	}
	if changed, _ := mustState(t, st, 1, store.OpRead, []int64{1}, false); changed != 0 {
		t.Fatalf("marking an expired item changed %d", changed)
	}
}

// testTypeFilterEveryPath: the type filters find the copies of every way
// a copy is written (one recipient, several, everyone, muted, scheduled),
// whatever the store keeps the type on.
func testTypeFilterEveryPath(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Muted: []string{"a.muted"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		typ string
		to  store.Targets
	}{
		{"a.one", store.Targets{Employees: []int64{1}}},
		{"a.two", store.Targets{Employees: []int64{1, 2}}},
		{"a.all", store.Targets{All: true}},
		{"b.other", store.Targets{All: true}},
		{"a.muted", store.Targets{Employees: []int64{1, 2}}},
		{"a.muted", store.Targets{Employees: []int64{1}}},
	} {
		m := msg(p.typ, p.to)
		m.Type = p.typ
		mustPublish(t, st, m)
	}
	for _, tt := range []struct {
		q    store.InboxQuery
		want []int64
	}{
		{store.InboxQuery{Type: "a.*"}, []int64{6, 5, 3, 2, 1}},
		{store.InboxQuery{Type: "a.two"}, []int64{2}},
		{store.InboxQuery{Type: "a.all"}, []int64{3}},
		{store.InboxQuery{Type: "a.muted"}, []int64{6, 5}},
		{store.InboxQuery{Type: "b.*"}, []int64{4}},
		{store.InboxQuery{UnreadOnly: true, Type: "a.*"}, []int64{3, 2, 1}},
	} {
		tt.q.Employee = 1
		if p := page(t, st, tt.q); !slices.Equal(seqs(p.Items), tt.want) {
			t.Errorf("Inbox(%+v) = %v, want %v", tt.q, seqs(p.Items), tt.want)
		}
	}
	if p := page(t, st, store.InboxQuery{Employee: 2, Type: "a.*"}); !slices.Equal(seqs(p.Items), []int64{4, 2, 1}) {
		t.Errorf("employee 2's a.* = %v, want [4 2 1]", seqs(p.Items))
	}
}

// testStateAllArchived: "all" reaches archived items too: an archived item
// made unread again is read by {"all":true}, and unarchive of all finds
// every archived item.
func testStateAllArchived(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	for i := 1; i <= 4; i++ {
		mustPublish(t, st, msg(fmt.Sprintf("n%d", i), store.Targets{Employees: []int64{1}}))
	}
	mustState(t, st, 1, store.OpArchive, []int64{1, 2}, false)
	mustState(t, st, 1, store.OpUnread, []int64{1}, false)
	if changed, c := mustState(t, st, 1, store.OpRead, nil, true); changed != 3 || c != (store.Counts{}) {
		t.Fatalf("read all: changed %d, counts %+v; want 3 (two unarchived, one archived), 0/0", changed, c)
	}
	p := page(t, st, store.InboxQuery{Employee: 1, Archived: true})
	if !slices.Equal(seqs(p.Items), []int64{2, 1}) || p.Items[1].ReadAt == nil {
		t.Fatalf("archived items %v (%+v); want 2, 1, both read", seqs(p.Items), p.Items)
	}
	if changed, _ := mustState(t, st, 1, store.OpSeen, nil, true); changed != 0 {
		t.Fatalf("seen all after read all changed %d; want 0", changed)
	}
	if changed, _ := mustState(t, st, 1, store.OpUnarchive, nil, true); changed != 2 {
		t.Fatalf("unarchive all changed %d; want 2", changed)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); !slices.Equal(seqs(p.Items), []int64{4, 3, 2, 1}) {
		t.Fatalf("inbox after unarchive all = %v; want 4,3,2,1", seqs(p.Items))
	}
}

// testStateManySeqs: a change of more items than one state event of a
// server store carries reaches the sink in full (in one change or in
// several, each with the counts after the change), in seq order.
func testStateManySeqs(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	const n = 650
	for i := range n {
		mustPublish(t, st, msg(fmt.Sprint(i), store.Targets{Employees: []int64{1}}))
	}
	all := make([]int64, 0, n+1)
	for i := range n {
		all = append(all, int64(n-i))
	}
	all = append(all, 7) // a duplicate changes nothing more
	if changed, c := mustState(t, st, 1, store.OpRead, all, false); changed != n || c.Unread != 0 || c.Unseen != 0 {
		t.Fatalf("read %d items: changed %d, counts %+v; want %d, 0/0", n, changed, c, n)
	}
	var got []int64
	h.Sink.Wait(t, "the read of every item", func([]store.Delivery, []store.Ephemeral, []Change) bool {
		got = got[:0]
		for _, c := range h.Sink.states {
			if c.Op == store.OpRead && c.Employee == 1 && !c.All && c.Counts == (store.Counts{}) {
				got = append(got, c.Seqs...)
			}
		}
		return len(got) >= n
	})
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("state changes carry seqs %v...; want 1..%d in order", got[:min(len(got), i+5)], n)
		}
	}
}

func testScheduled(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	// 3 s: what is checked "before the time" must run before it on a
	// loaded machine too.
	at := time.Now().Add(3 * time.Second)
	m := msg("later", store.Targets{Employees: []int64{1, 2, 99}})
	m.DeliverAt = &at
	res := mustPublish(t, st, m)
	if res.Recipients != 2 || fmt.Sprint(res.Unknown.Employees) != "[99]" || res.NotificationID == 0 {
		t.Fatalf("scheduled publish answer %+v; want 2 recipients, 99 unknown", res)
	}
	mustPublish(t, st, msg("now", store.Targets{Employees: []int64{1}}))
	if n, err := st.DeliverDue(ctx(), 10); err != nil || n != 0 {
		t.Fatalf("DeliverDue before the time = %d, %v; want 0", n, err)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "now" || p.UnreadCount != 1 {
		t.Fatalf("before the time: inbox %s unread %d; want only now", titles(p.Items), p.UnreadCount)
	}
	if head, _ := st.Head(ctx(), 2); head != 0 {
		t.Fatalf("employee 2 head %d before delivery; want 0 (no seq until delivered)", head)
	}
	time.Sleep(time.Until(at) + 20*time.Millisecond)
	if n, err := st.DeliverDue(ctx(), 10); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v; want 1", n, err)
	}
	if n, _ := st.DeliverDue(ctx(), 10); n != 0 {
		t.Fatalf("DeliverDue again = %d; want 0 (exactly once)", n)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "later,now" || p.Items[0].Seq != 2 {
		t.Fatalf("after delivery: inbox %s (first seq %d); want later (seq 2), now", titles(p.Items), p.Items[0].Seq)
	}
	for _, typ := range []string{m.Type, "test.*"} {
		if p := page(t, st, store.InboxQuery{Employee: 2, Type: typ}); titles(p.Items) != "later" {
			t.Fatalf("after delivery: employee 2's inbox of type %s is %q; want later", typ, titles(p.Items))
		}
	}
	h.Sink.Wait(t, "the scheduled delivery", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool {
		return len(d) == 2 && d[1].Notification.Title == "later" && len(d[1].Recipients) == 2
	})
}

// testScheduledAllMuted: a scheduled notification whose every recipient
// has muted its type is stored read for them when its time comes, and the
// sink gets no delivery for it (a delivery without recipients would reach
// no stream, but every instance would still read it). The next publish's
// delivery comes after it in commit order, so its absence is checked, not
// waited for.
func testScheduledAllMuted(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Muted: []string{"test.*"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(300 * time.Millisecond)
	m := msg("muted later", store.Targets{Employees: []int64{1}})
	m.DeliverAt = &at
	mustPublish(t, st, m)
	time.Sleep(time.Until(at) + 20*time.Millisecond)
	if _, err := st.DeliverDue(ctx(), 10); err != nil {
		t.Fatal(err)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "muted later" {
		t.Fatalf("after its time: inbox %s; want the muted notification stored", titles(p.Items))
	}
	after := msg("after", store.Targets{Employees: []int64{1}})
	after.Type = "other"
	mustPublish(t, st, after)
	h.Sink.Wait(t, "the delivery after it", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool {
		return len(d) > 0 && d[len(d)-1].Notification.Title == "after"
	})
	for _, d := range h.Sink.Deliveries() {
		if d.Notification.Title != "after" {
			t.Fatalf("the sink got %q with %d recipients; want only after (nobody gets a notification all its recipients muted)", d.Notification.Title, len(d.Recipients))
		}
	}
}

// testScheduledExpiry: a scheduled notification that expires before its
// time comes reaches nobody (no copy, no seq, nothing for the sink); one
// that expires later is delivered with its expiry.
func testScheduledExpiry(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	// 3 s and 2 s: both publishes must come before either time on a loaded
	// machine too.
	now := time.Now()
	at, gone, lasting := now.Add(3*time.Second), now.Add(2*time.Second), now.Add(time.Hour).UTC().Truncate(time.Millisecond)
	m := msg("expired first", store.Targets{Employees: []int64{1}})
	m.DeliverAt, m.ExpiresAt = &at, &gone
	mustPublish(t, st, m)
	m = msg("lasting", store.Targets{Employees: []int64{1}})
	m.DeliverAt, m.ExpiresAt = &at, &lasting
	mustPublish(t, st, m)
	time.Sleep(time.Until(at) + 20*time.Millisecond)
	if n, err := st.DeliverDue(ctx(), 10); err != nil || n != 2 {
		t.Fatalf("DeliverDue = %d, %v; want 2 (both taken, one to nobody)", n, err)
	}
	if head, _ := st.Head(ctx(), 1); head != 1 {
		t.Fatalf("head = %d; want 1 (the expired one got no seq)", head)
	}
	p := page(t, st, store.InboxQuery{Employee: 1})
	if titles(p.Items) != "lasting" || p.Items[0].Notification.ExpiresAt == nil || !p.Items[0].Notification.ExpiresAt.Equal(lasting) {
		t.Fatalf("inbox %s (%+v); want lasting with its expiry", titles(p.Items), p.Items)
	}
	marker := msg("marker", store.Targets{Employees: []int64{1}})
	mustPublish(t, st, marker)
	h.Sink.Wait(t, "the marker", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool {
		return len(d) > 0 && d[len(d)-1].Notification.Title == "marker"
	})
	var got []string
	for _, d := range h.Sink.Deliveries() {
		got = append(got, fmt.Sprintf("%s:%d", d.Notification.Title, len(d.Recipients)))
	}
	if want := "[lasting:1 marker:1]"; fmt.Sprint(got) != want {
		t.Fatalf("the sink got %v; want %s", got, want)
	}
}

func testWithdraw(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	m := msg("oops", store.Targets{Employees: []int64{1, 2}})
	m.Owner = "service:a"
	res := mustPublish(t, st, m)
	later := time.Now().Add(time.Hour)
	m.DeliverAt = &later
	sched := mustPublish(t, st, m)
	mustPublish(t, st, msg("keep", store.Targets{Employees: []int64{1}}))
	if err := st.Withdraw(ctx(), "service:b", res.NotificationID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Withdraw by another owner = %v, want ErrNotFound", err)
	}
	if err := st.Withdraw(ctx(), "service:a", 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Withdraw of an unknown id = %v, want ErrNotFound", err)
	}
	if err := st.Withdraw(ctx(), "service:a", res.NotificationID); err != nil {
		t.Fatal(err)
	}
	if err := st.Withdraw(ctx(), "service:a", sched.NotificationID); err != nil {
		t.Fatalf("withdrawing a scheduled notification: %v", err)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "keep" {
		t.Fatalf("employee 1 inbox after withdrawal: %s, want keep", titles(p.Items))
	}
	if c := mustCounts(t, st, 2); c != (store.Counts{}) {
		t.Fatalf("employee 2 counts after withdrawal: %+v", c)
	}
	states := h.Sink.WaitStates(t, 2)
	var got []string
	for _, c := range states {
		got = append(got, fmt.Sprintf("%d:%s%v:%d", c.Employee, c.Op, c.Seqs, c.Counts.Unread))
	}
	slices.Sort(got)
	if want := "[1:delete[1]:1 2:delete[1]:0]"; fmt.Sprint(got) != want {
		t.Fatalf("withdrawal changes %v, want %s", got, want)
	}
	if err := st.Withdraw(ctx(), "service:a", res.NotificationID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("withdrawing twice = %v, want ErrNotFound", err)
	}
}

func testSweep(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	soon := time.Now().Add(100 * time.Millisecond)
	m := msg("brief", store.Targets{Employees: []int64{1, 2}})
	m.ExpiresAt = &soon
	mustPublish(t, st, m)
	mustPublish(t, st, msg("old", store.Targets{Employees: []int64{1}}))
	time.Sleep(150 * time.Millisecond)
	cut := time.Now()
	time.Sleep(2 * time.Millisecond)
	mustPublish(t, st, msg("new", store.Targets{Employees: []int64{1}}))
	// Retention off: only the expired copies go.
	total := 0
	for {
		c, err := st.Sweep(ctx(), time.Time{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		total += c.Rows
		if c.Rows == 0 {
			break
		}
	}
	if total != 3 { // two copies and the notification
		t.Fatalf("sweep without retention deleted %d rows, want 3", total)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "new,old" {
		t.Fatalf("inbox after sweep without retention: %s", titles(p.Items))
	}
	// The old copy and its notification; the sweep sizes its next chunk
	// by the time the database spent on this one.
	if c, err := st.Sweep(ctx(), cut, 100); err != nil || c.Rows != 2 || c.Busy <= 0 {
		t.Fatalf("retention sweep = %+v, %v; want 2 rows deleted and their time", c, err)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "new" {
		t.Fatalf("inbox after sweep with retention: %s, want new", titles(p.Items))
	}
	// Seqs keep counting after a sweep.
	if res := mustPublish(t, st, msg("next", store.Targets{Employees: []int64{1}})); res.Recipients != 1 {
		t.Fatal(res)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); p.Items[0].Seq != 4 {
		t.Fatalf("seq after sweep = %d, want 4", p.Items[0].Seq)
	}
}

// testSweepScheduledAge: retention ages a scheduled notification from its
// deliver_at, when its copies appeared, not from its publish. After
// delivery, a sweep keeps the one due after the cutoff and deletes the one
// due before it and an ordinary one published before it. The one kept is
// the first published, so a chunk of one row per kind must look past it:
// a first chunk that deleted nothing would end the sweep (sweepOnce stops
// at a chunk that deletes less than its limit).
func testSweepScheduledAge(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	// 300 ms and 3 s: the publishes must come before the first time, and
	// the cutoff before the second, on a loaded machine too.
	now := time.Now()
	early, late := now.Add(300*time.Millisecond), now.Add(3*time.Second)
	for _, p := range []struct {
		title string
		at    *time.Time
	}{{"due late", &late}, {"due early", &early}, {"old", nil}} {
		m := msg(p.title, store.Targets{Employees: []int64{1}})
		m.DeliverAt = p.at
		mustPublish(t, st, m)
		time.Sleep(2 * time.Millisecond) // created_at in publish order
	}
	time.Sleep(max(time.Until(early), 0) + 20*time.Millisecond)
	cut := time.Now()
	time.Sleep(time.Until(late) + 20*time.Millisecond)
	if n, err := st.DeliverDue(ctx(), 10); err != nil || n != 2 {
		t.Fatalf("DeliverDue = %d, %v; want 2", n, err)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "due late,due early,old" {
		t.Fatalf("inbox before the sweep: %s; want due late,due early,old", titles(p.Items))
	}
	var chunks []int
	total := 0
	for range 20 {
		c, err := st.Sweep(ctx(), cut, 1)
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c.Rows)
		total += c.Rows
		if c.Rows == 0 {
			break
		}
	}
	if chunks[0] == 0 || total != 4 || chunks[len(chunks)-1] != 0 {
		t.Fatalf("retention sweep in chunks of 1 deleted %v rows; want 4 (due early and old, a copy each), the first chunk not empty, and an end", chunks)
	}
	if p := page(t, st, store.InboxQuery{Employee: 1}); titles(p.Items) != "due late" {
		t.Fatalf("inbox after the sweep: %s; want due late (delivered after the cutoff, so younger than it)", titles(p.Items))
	}
}

// testSweepKeepsFreshKeys: a sweep drops idempotency keys older than
// store.IdempotencyTTL only; a retry after it is still answered from its
// key.
func testSweepKeepsFreshKeys(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	m := msg("once", store.Targets{Employees: []int64{1}})
	idem := &store.Idempotency{Owner: "svc", Key: "k", Hash: "h"}
	first, err := st.Publish(ctx(), m, idem)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sweep(ctx(), time.Time{}, 100); err != nil {
		t.Fatal(err)
	}
	again, err := st.Publish(ctx(), m, idem)
	if err != nil || !again.Replayed || again.NotificationID != first.NotificationID {
		t.Fatalf("retry after a sweep = %+v, %v; want the first answer (notification %d), replayed", again, err, first.NotificationID)
	}
	if head, _ := st.Head(ctx(), 1); head != 1 {
		t.Fatalf("head = %d; want 1 (the retry stored nothing)", head)
	}
}

func testCenterFields(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	m := msg("linked", store.Targets{Employees: []int64{1}})
	m.URL, m.ExpiresAt = "https://intranet.example/requests/481", &exp
	mustPublish(t, st, m)
	h.Sink.Wait(t, "the delivery", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) == 1 })
	n := h.Sink.Deliveries()[0].Notification
	if n.URL != m.URL || n.ExpiresAt == nil || !n.ExpiresAt.Equal(exp) {
		t.Fatalf("delivered notification url %q expires %v; want %q, %v", n.URL, n.ExpiresAt, m.URL, exp)
	}
	for _, it := range append(page(t, st, store.InboxQuery{Employee: 1}).Items, must(st.Since(ctx(), 1, 0, 10))...) {
		if it.Notification.URL != m.URL || it.Notification.ExpiresAt == nil || !it.Notification.ExpiresAt.Equal(exp) {
			t.Fatalf("stored item %+v; want url and expiry", it.Notification)
		}
		if it.SeenAt != nil || it.ArchivedAt != nil {
			t.Fatalf("new item seen/archived: %+v", it)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
