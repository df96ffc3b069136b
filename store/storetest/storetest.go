// Package storetest is the contract every store.Store implementation passes.
// Each dialect's tests call Run with a function that opens a fresh, empty
// store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// Opener returns a fresh, empty, migrated store; it registers its own cleanup.
type Opener func(t *testing.T) store.Store

// Run runs the whole contract suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *Harness)
	}{
		{"PutEmployee", testPutEmployee},
		{"EmployeeConflicts", testEmployeeConflicts},
		{"EmployeeByLogin", testEmployeeByLogin},
		{"LoginsAcrossColumns", testLoginsAcrossColumns},
		{"LoginFolding", testLoginFolding},
		{"ConcurrentLoginClaims", testConcurrentLoginClaims},
		{"DeleteEmployee", testDeleteEmployee},
		{"EmployeesList", testEmployeesList},
		{"PublishTargets", testPublishTargets},
		{"PublishNobody", testPublishNobody},
		{"SeqPerEmployee", testSeqPerEmployee},
		{"Inbox", testInbox},
		{"MarkRead", testMarkRead},
		{"Idempotency", testIdempotency},
		{"IdempotencyKeysKept", testIdempotencyKeysKept},
		{"IdempotencyReplay", testIdempotencyReplay},
		{"IdempotencyConcurrentRetries", testConcurrentRetries},
		{"ConcurrentFailureIsolated", testConcurrentFailureIsolated},
		{"Ephemeral", testEphemeral},
		{"ConcurrentPublishersCommitOrder", testConcurrentPublishers},
		{"LargeFanout", testLargeFanout},
		{"DataRoundTrip", testDataRoundTrip},
		{"PushSubscriptions", testPushSubscriptions},
		{"PushQueue", testPushQueue},
		{"PushConcurrent", testPushConcurrent},
		{"PushSettle", testPushSettle},
		{"PushStreamedAndLimit", testPushStreamedAndLimit},
		{"PushCenter", testPushCenter},
		{"StateTransitions", testStateTransitions},
		{"StateOthersIgnored", testStateOthersIgnored},
		{"InboxFilters", testInboxFilters},
		{"TypeFilterEveryPath", testTypeFilterEveryPath},
		{"StateManySeqs", testStateManySeqs},
		{"StateAllArchived", testStateAllArchived},
		{"Preferences", testPreferences},
		{"MutedPublish", testMutedPublish},
		{"Expiry", testExpiry},
		{"Scheduled", testScheduled},
		{"ScheduledAllMuted", testScheduledAllMuted},
		{"ScheduledExpiry", testScheduledExpiry},
		{"Withdraw", testWithdraw},
		{"Sweep", testSweep},
		{"SweepScheduledAge", testSweepScheduledAge},
		{"SweepKeepsFreshKeys", testSweepKeepsFreshKeys},
		{"CenterFields", testCenterFields},
		{"CountsKept", testCountsKept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHarness(t, open(t))
			tt.fn(t, h)
		})
	}
}

// Harness is a store with a recording sink listening to it.
type Harness struct {
	Store store.Store
	Sink  *Recorder
}

// NewHarness starts st.Listen with a Recorder and stops it at cleanup.
func NewHarness(t testing.TB, st store.Store) *Harness {
	t.Helper()
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Listen(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Listen returned %v", err)
		}
	})
	// A listener may need a moment to subscribe; a ping through the store
	// confirms it is up before the test publishes.
	deadline := time.Now().Add(10 * time.Second)
	for st.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready after 10s: %v", st.Ping(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Harness{Store: st, Sink: rec}
}

// Recorder is a store.Sink that keeps what it is handed.
type Recorder struct {
	mu         sync.Mutex
	deliveries []store.Delivery
	ephemerals []store.Ephemeral
	changes    []Change
	states     []store.StateChange
	resyncs    int
	signal     chan struct{}
}

// Change is one EmployeeChanged call.
type Change struct {
	ID      int64
	Deleted bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{signal: make(chan struct{}, 1)} }

func (r *Recorder) poke() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// Deliver implements store.Sink.
func (r *Recorder) Deliver(d store.Delivery) {
	r.mu.Lock()
	r.deliveries = append(r.deliveries, d)
	r.mu.Unlock()
	r.poke()
}

// Connected implements store.Sink: a Recorder stands for streams of every
// employee, so it is handed every recipient.
func (r *Recorder) Connected(ids []int64) []int64 { return ids }

// DeliverEphemeral implements store.Sink.
func (r *Recorder) DeliverEphemeral(e store.Ephemeral) {
	r.mu.Lock()
	r.ephemerals = append(r.ephemerals, e)
	r.mu.Unlock()
	r.poke()
}

// EmployeeChanged implements store.Sink.
func (r *Recorder) EmployeeChanged(id int64, deleted bool) {
	r.mu.Lock()
	r.changes = append(r.changes, Change{id, deleted})
	r.mu.Unlock()
	r.poke()
}

// Resync implements store.Sink.
func (r *Recorder) Resync() {
	r.mu.Lock()
	r.resyncs++
	r.mu.Unlock()
	r.poke()
}

// State implements store.Sink.
func (r *Recorder) State(c store.StateChange) {
	r.mu.Lock()
	r.states = append(r.states, c)
	r.mu.Unlock()
	r.poke()
}

// States returns a copy of the state changes so far.
func (r *Recorder) States() []store.StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states)
}

// WaitStates blocks until at least n state changes were recorded and
// returns them.
func (r *Recorder) WaitStates(t testing.TB, n int) []store.StateChange {
	t.Helper()
	r.Wait(t, fmt.Sprintf("%d state changes", n), func([]store.Delivery, []store.Ephemeral, []Change) bool {
		return len(r.states) >= n
	})
	return r.States()
}

// Wait blocks until cond holds on the recorded state or the timeout passes.
func (r *Recorder) Wait(t testing.TB, what string, cond func(d []store.Delivery, e []store.Ephemeral, c []Change) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.deliveries, r.ephemerals, r.changes)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.signal:
		case <-time.After(50 * time.Millisecond):
		case <-timeout:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting for %s: not seen after 10s (have %d deliveries, %d ephemerals, %d changes)",
				what, len(r.deliveries), len(r.ephemerals), len(r.changes))
		}
	}
}

// Deliveries returns a copy of what was delivered so far.
func (r *Recorder) Deliveries() []store.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.deliveries)
}

// Resyncs returns how many times Resync was called.
func (r *Recorder) Resyncs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs
}

// Ephemerals returns a copy of the ephemeral messages so far.
func (r *Recorder) Ephemerals() []store.Ephemeral {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ephemerals)
}

// Seed puts employees 1..n (user<i>@corp.example, username user<i>), giving
// the first `admins` of them the role "admin" and all of them "staff".
// A large directory is put by a few goroutines at once: each put is its own
// commit, and PostgreSQL flushes concurrent commits together, where one
// after another each waits for its own flush (3,000 puts took over a minute
// on a loaded machine). The directory is the same whatever the order.
func Seed(t testing.TB, st store.Store, n, admins int) {
	t.Helper()
	workers := 1
	if n > 64 {
		workers = 8
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := seedOne(st, i, admins); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 1; i <= n; i++ {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func seedOne(st store.Store, i, admins int) error {
	roles := []string{"staff"}
	if i <= admins {
		roles = append(roles, "admin")
	}
	_, _, err := st.PutEmployee(context.Background(), store.Employee{
		ID: int64(i), Email: fmt.Sprintf("User%d@Corp.Example", i), Username: fmt.Sprintf("user%d", i),
		Name: fmt.Sprintf("User %d", i), Roles: roles,
	})
	if err != nil {
		return fmt.Errorf("seed employee %d: %w", i, err)
	}
	return nil
}

func ctx() context.Context { return context.Background() }

func msg(title string, to store.Targets) store.Message {
	return store.Message{To: to, Type: "test.event", Title: title, Body: "body of " + title, Publisher: "tester"}
}

func mustPublish(t testing.TB, st store.Store, m store.Message) store.PublishResult {
	t.Helper()
	res, err := st.Publish(ctx(), m, nil)
	if err != nil {
		t.Fatalf("Publish(%q): %v", m.Title, err)
	}
	return res
}

func testPutEmployee(t *testing.T, h *Harness) {
	st := h.Store
	e, created, err := st.PutEmployee(ctx(), store.Employee{ID: 12, Email: " Ana@Corp.Example ", Username: "AnaG", Name: "Ana García", Roles: []string{"staff", "admin", "staff", " "}})
	if err != nil || !created {
		t.Fatalf("PutEmployee new: created=%v err=%v, want created", created, err)
	}
	if e.Email != "ana@corp.example" || e.Username != "anag" || e.Name != "Ana García" || !slices.Equal(e.Roles, []string{"admin", "staff"}) {
		t.Fatalf("PutEmployee stored %+v, want normalized email/username and sorted distinct roles", e)
	}
	e2, created, err := st.PutEmployee(ctx(), store.Employee{ID: 12, Email: "ana@corp.example", Name: "Ana G.", Roles: nil})
	if err != nil || created {
		t.Fatalf("PutEmployee update: created=%v err=%v, want updated", created, err)
	}
	if e2.Username != "" || e2.Name != "Ana G." || len(e2.Roles) != 0 {
		t.Fatalf("PutEmployee replace gave %+v, want username cleared, name changed, no roles", e2)
	}
	got, err := st.Employee(ctx(), 12)
	if err != nil || got.Name != "Ana G." {
		t.Fatalf("Employee(12) = %+v, %v", got, err)
	}
	if _, err := st.Employee(ctx(), 99); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Employee(99) error = %v, want ErrNotFound", err)
	}
	h.Sink.Wait(t, "two change events for employee 12", func(_ []store.Delivery, _ []store.Ephemeral, c []Change) bool {
		return len(c) >= 2 && c[0] == Change{12, false}
	})
}

func testEmployeeConflicts(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 3, Email: "USER1@corp.example"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("email taken: error = %v, want ErrConflict", err)
	}
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 3, Username: "User2"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("username taken: error = %v, want ErrConflict", err)
	}
	if _, err := st.Employee(ctx(), 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused put created employee 3 (err=%v)", err)
	}
	// Keeping one's own email is no conflict.
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 1, Email: "user1@corp.example", Username: "user1"}); err != nil {
		t.Fatalf("re-put own email: %v", err)
	}
}

func testEmployeeByLogin(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 1)
	for _, login := range []string{"user2", "USER2", "user2@corp.example", "User2@CORP.example"} {
		e, err := st.EmployeeByLogin(ctx(), login)
		if err != nil || e.ID != 2 {
			t.Errorf("EmployeeByLogin(%q) = %d, %v; want employee 2", login, e.ID, err)
		}
	}
	for _, login := range []string{"", "nobody", "user2@other.example"} {
		if _, err := st.EmployeeByLogin(ctx(), login); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EmployeeByLogin(%q) error = %v, want ErrNotFound", login, err)
		}
	}
	e, _ := st.EmployeeByLogin(ctx(), "user1")
	if !slices.Equal(e.Roles, []string{"admin", "staff"}) {
		t.Errorf("roles of user1 = %v, want [admin staff]", e.Roles)
	}
}

func testDeleteEmployee(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	mustPublish(t, st, msg("hello", store.Targets{Employees: []int64{1, 2}}))
	if err := st.DeleteEmployee(ctx(), 1); err != nil {
		t.Fatalf("DeleteEmployee(1): %v", err)
	}
	if err := st.DeleteEmployee(ctx(), 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteEmployee(1) = %v, want ErrNotFound", err)
	}
	if _, err := st.EmployeeByLogin(ctx(), "user1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted employee still found by login: %v", err)
	}
	page, err := st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 10})
	if err != nil || len(page.Items) != 0 || page.UnreadCount != 0 {
		t.Fatalf("inbox of deleted employee = %+v, %v; want empty", page, err)
	}
	page, _ = st.Inbox(ctx(), store.InboxQuery{Employee: 2, Limit: 10})
	if len(page.Items) != 1 {
		t.Fatalf("employee 2 lost their copy: %d items", len(page.Items))
	}
	res := mustPublish(t, st, msg("by role", store.Targets{Roles: []string{"staff"}}))
	if res.Recipients != 1 {
		t.Fatalf("role publish after delete reached %d, want 1", res.Recipients)
	}
	h.Sink.Wait(t, "delete change for employee 1", func(_ []store.Delivery, _ []store.Ephemeral, c []Change) bool {
		return slices.Contains(c, Change{1, true})
	})
}

func testEmployeesList(t *testing.T, h *Harness) {
	Seed(t, h.Store, 5, 0)
	first, err := h.Store.Employees(ctx(), 0, 3)
	if err != nil || len(first) != 3 || first[0].ID != 1 || first[2].ID != 3 {
		t.Fatalf("Employees(0,3) = %v, %v", first, err)
	}
	rest, _ := h.Store.Employees(ctx(), 3, 10)
	if len(rest) != 2 || rest[0].ID != 4 {
		t.Fatalf("Employees(3,10) = %v", rest)
	}
}

func testPublishTargets(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 6, 2)
	tests := []struct {
		name        string
		to          store.Targets
		recipients  []int64
		unknownIDs  []int64
		unknownMail []string
	}{
		{"employees", store.Targets{Employees: []int64{3, 99, 4, 3, 99}}, []int64{3, 4}, []int64{99}, nil},
		{"emails", store.Targets{Emails: []string{"USER5@corp.example", "ghost@corp.example", "Ghost@corp.example"}}, []int64{5}, nil, []string{"ghost@corp.example"}},
		{"roles", store.Targets{Roles: []string{"admin", "nope"}}, []int64{1, 2}, nil, nil},
		{"all", store.Targets{All: true}, []int64{1, 2, 3, 4, 5, 6}, nil, nil},
		{"union", store.Targets{Employees: []int64{2, 6}, Emails: []string{"user6@corp.example"}, Roles: []string{"admin"}}, []int64{1, 2, 6}, nil, nil},
	}
	for _, tt := range tests {
		before := len(h.Sink.Deliveries())
		res := mustPublish(t, st, msg(tt.name, tt.to))
		if res.NotificationID <= 0 || res.Recipients != len(tt.recipients) || res.Replayed {
			t.Errorf("%s: result %+v, want an id and %d recipients", tt.name, res, len(tt.recipients))
		}
		if !slices.Equal(res.Unknown.Employees, tt.unknownIDs) || !slices.Equal(res.Unknown.Emails, tt.unknownMail) {
			t.Errorf("%s: unknown = %+v, want ids %v emails %v", tt.name, res.Unknown, tt.unknownIDs, tt.unknownMail)
		}
		h.Sink.Wait(t, tt.name+" delivery", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) > before })
		d := h.Sink.Deliveries()[before]
		var got []int64
		for _, r := range d.Recipients {
			got = append(got, r.Employee)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.recipients) || d.Notification.ID != res.NotificationID || d.Notification.Title != tt.name {
			t.Errorf("%s: delivered to %v (notification %d %q), want %v (notification %d)", tt.name, got, d.Notification.ID, d.Notification.Title, tt.recipients, res.NotificationID)
		}
		for _, id := range tt.recipients {
			items, _ := st.Since(ctx(), id, 0, 100)
			if len(items) == 0 || items[len(items)-1].Notification.Title != tt.name {
				t.Errorf("%s: employee %d has no stored copy", tt.name, id)
			}
		}
	}
}

func testPublishNobody(t *testing.T, h *Harness) {
	Seed(t, h.Store, 1, 0)
	res := mustPublish(t, h.Store, msg("nobody", store.Targets{Employees: []int64{42}}))
	if res.Recipients != 0 || !slices.Equal(res.Unknown.Employees, []int64{42}) {
		t.Fatalf("publish to unknown only = %+v, want 0 recipients and 42 unknown", res)
	}
	mustPublish(t, h.Store, msg("marker", store.Targets{Employees: []int64{1}}))
	h.Sink.Wait(t, "marker", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) >= 1 })
	if d := h.Sink.Deliveries(); len(d) != 1 || d[0].Notification.Title != "marker" {
		t.Fatalf("deliveries = %d (first %q); a publish to nobody must deliver nothing", len(d), d[0].Notification.Title)
	}
}

func testSeqPerEmployee(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	mustPublish(t, st, msg("a", store.Targets{Employees: []int64{1}}))
	mustPublish(t, st, msg("b", store.Targets{Employees: []int64{1, 2}}))
	mustPublish(t, st, msg("c", store.Targets{Employees: []int64{1}}))
	for id, want := range map[int64][]int64{1: {1, 2, 3}, 2: {1}} {
		items, err := st.Since(ctx(), id, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, it := range items {
			seqs = append(seqs, it.Seq)
		}
		if !slices.Equal(seqs, want) {
			t.Errorf("employee %d seqs = %v, want %v", id, seqs, want)
		}
		head, err := st.Head(ctx(), id)
		if err != nil || head != want[len(want)-1] {
			t.Errorf("Head(%d) = %d, %v; want %d", id, head, err, want[len(want)-1])
		}
	}
	if items, _ := st.Since(ctx(), 1, 1, 1); len(items) != 1 || items[0].Seq != 2 || items[0].Notification.Title != "b" {
		t.Errorf("Since(1, after 1, limit 1) = %+v, want just seq 2 (b)", items)
	}
}

func testInbox(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	for i := 1; i <= 7; i++ {
		mustPublish(t, st, msg(fmt.Sprintf("n%d", i), store.Targets{Employees: []int64{1}}))
	}
	mustPublish(t, st, msg("other", store.Targets{Employees: []int64{2}}))
	page, err := st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if titles(page.Items) != "n7,n6,n5" || !page.More || page.UnreadCount != 7 {
		t.Fatalf("first page = %s more=%v unread=%d; want n7,n6,n5 more unread 7", titles(page.Items), page.More, page.UnreadCount)
	}
	page, _ = st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 3, Before: page.Items[2].Seq})
	if titles(page.Items) != "n4,n3,n2" || !page.More {
		t.Fatalf("second page = %s more=%v", titles(page.Items), page.More)
	}
	page, _ = st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 3, Before: page.Items[2].Seq})
	if titles(page.Items) != "n1" || page.More {
		t.Fatalf("last page = %s more=%v", titles(page.Items), page.More)
	}
	if _, _, err := st.MarkRead(ctx(), 1, []int64{7, 5}, false); err != nil {
		t.Fatal(err)
	}
	page, _ = st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 10, UnreadOnly: true})
	if titles(page.Items) != "n6,n4,n3,n2,n1" || page.UnreadCount != 5 {
		t.Fatalf("unread page = %s unread=%d", titles(page.Items), page.UnreadCount)
	}
	page, _ = st.Inbox(ctx(), store.InboxQuery{Employee: 1, Limit: 1})
	if page.Items[0].ReadAt == nil {
		t.Fatalf("n7 was marked read but ReadAt is nil")
	}
	it := page.Items[0]
	if it.Notification.Type != "test.event" || it.Notification.Body != "body of n7" || it.Notification.CreatedAt.IsZero() {
		t.Fatalf("item fields = %+v", it)
	}
}

func titles(items []store.InboxItem) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ","
		}
		s += it.Notification.Title
	}
	return s
}

func testMarkRead(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	for i := 0; i < 4; i++ {
		mustPublish(t, st, msg("x", store.Targets{Employees: []int64{1, 2}}))
	}
	marked, unread, err := st.MarkRead(ctx(), 1, []int64{1, 2, 2, 99}, false)
	if err != nil || marked != 2 || unread != 2 {
		t.Fatalf("MarkRead(1, [1 2 2 99]) = %d, %d, %v; want 2 marked, 2 unread", marked, unread, err)
	}
	marked, unread, _ = st.MarkRead(ctx(), 1, []int64{1}, false)
	if marked != 0 || unread != 2 {
		t.Fatalf("marking again = %d, %d; want 0 marked, 2 unread", marked, unread)
	}
	// Employee 2's copies are untouched by employee 1's marks.
	if page, _ := st.Inbox(ctx(), store.InboxQuery{Employee: 2, Limit: 10}); page.UnreadCount != 4 {
		t.Fatalf("employee 2 unread = %d, want 4", page.UnreadCount)
	}
	marked, unread, _ = st.MarkRead(ctx(), 1, nil, true)
	if marked != 2 || unread != 0 {
		t.Fatalf("MarkRead all = %d, %d; want 2, 0", marked, unread)
	}
}

func testIdempotency(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	m := msg("once", store.Targets{Employees: []int64{1, 7}})
	idem := &store.Idempotency{Owner: "svc-a", Key: "k1", Hash: "h1"}
	first, err := st.Publish(ctx(), m, idem)
	if err != nil || first.Replayed {
		t.Fatalf("first publish: %+v, %v", first, err)
	}
	again, err := st.Publish(ctx(), m, idem)
	if err != nil || !again.Replayed || again.NotificationID != first.NotificationID || again.Recipients != 1 || !slices.Equal(again.Unknown.Employees, []int64{7}) {
		t.Fatalf("retry = %+v, %v; want the first answer %+v, replayed", again, err, first)
	}
	if head, _ := st.Head(ctx(), 1); head != 1 {
		t.Fatalf("after a retry the head is %d, want 1 (nothing new)", head)
	}
	_, err = st.Publish(ctx(), msg("different", store.Targets{Employees: []int64{1}}), &store.Idempotency{Owner: "svc-a", Key: "k1", Hash: "h2"})
	if !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("reused key with other body: error %v, want ErrIdempotencyMismatch", err)
	}
	other, err := st.Publish(ctx(), m, &store.Idempotency{Owner: "svc-b", Key: "k1", Hash: "h1"})
	if err != nil || other.Replayed || other.NotificationID == first.NotificationID {
		t.Fatalf("same key, other owner = %+v, %v; want a new notification", other, err)
	}
	if head, _ := st.Head(ctx(), 1); head != 2 {
		t.Fatalf("head = %d, want 2", head)
	}
}

// testIdempotencyReplay: Replay answers a retry from its key alone, as
// Publish would (the deliver_at of a scheduled publish included), and
// writes nothing.
func testIdempotencyReplay(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	if res, err := st.Replay(ctx(), store.Idempotency{Owner: "svc", Key: "k1", Hash: "h1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replay of a key never used = %+v, %v; want ErrNotFound", res, err)
	}
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	later := msg("later", store.Targets{Employees: []int64{1, 7}})
	later.DeliverAt = &at
	idem := store.Idempotency{Owner: "svc", Key: "k1", Hash: "h1"}
	first, err := st.Publish(ctx(), later, &idem)
	if err != nil || first.DeliverAt == nil || !first.DeliverAt.Equal(at) {
		t.Fatalf("scheduled publish = %+v, %v; want deliver_at %v", first, err, at)
	}
	want := first
	want.Replayed = true
	for name, retry := range map[string]func() (store.PublishResult, error){
		"Publish": func() (store.PublishResult, error) { return st.Publish(ctx(), later, &idem) },
		"Replay":  func() (store.PublishResult, error) { return st.Replay(ctx(), idem) },
	} {
		got, err := retry()
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || got.DeliverAt == nil || !got.DeliverAt.Equal(at) {
			t.Fatalf("%s of the scheduled publish = %+v, %v; want %+v", name, got, err, want)
		}
	}
	if _, err := st.Replay(ctx(), store.Idempotency{Owner: "svc", Key: "k1", Hash: "h2"}); !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("Replay with another body: %v; want ErrIdempotencyMismatch", err)
	}
	if _, err := st.Replay(ctx(), store.Idempotency{Owner: "other", Key: "k1", Hash: "h1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replay of another owner's key: %v; want ErrNotFound", err)
	}
	now := store.Idempotency{Owner: "svc", Key: "k2", Hash: "h1"}
	if _, err := st.Publish(ctx(), msg("now", store.Targets{Employees: []int64{1}}), &now); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Replay(ctx(), now); err != nil || !got.Replayed || got.DeliverAt != nil || got.Recipients != 1 {
		t.Fatalf("Replay of a publish at once = %+v, %v; want replayed, 1 recipient, no deliver_at", got, err)
	}
	if head, _ := st.Head(ctx(), 1); head != 1 {
		t.Fatalf("head = %d, want 1 (retries store nothing)", head)
	}
}

// testIdempotencyKeysKept: a key's answer is kept for store.IdempotencyTTL
// whatever other keys are used meanwhile (saving a key drops the expired
// ones only), for stored and ephemeral publishes alike.
func testIdempotencyKeysKept(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	m := msg("kept", store.Targets{Employees: []int64{1}})
	a := &store.Idempotency{Owner: "svc", Key: "a", Hash: "h"}
	first, err := st.Publish(ctx(), m, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(ctx(), msg("other", store.Targets{Employees: []int64{1}}), &store.Idempotency{Owner: "svc", Key: "b", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	again, err := st.Publish(ctx(), m, a)
	if err != nil || !again.Replayed || again.NotificationID != first.NotificationID {
		t.Fatalf("retry of key a after key b was used = %+v, %v; want the first answer (notification %d), replayed", again, err, first.NotificationID)
	}
	e := &store.Idempotency{Owner: "svc", Key: "e", Hash: "h"}
	if _, err := st.PublishEphemeral(ctx(), m, e); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PublishEphemeral(ctx(), m, &store.Idempotency{Owner: "svc", Key: "f", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	if again, err := st.PublishEphemeral(ctx(), m, e); err != nil || !again.Replayed || again.Recipients != 1 {
		t.Fatalf("ephemeral retry of key e after key f was used = %+v, %v; want replayed, 1 recipient", again, err)
	}
	if head, _ := st.Head(ctx(), 1); head != 2 {
		t.Fatalf("head = %d, want 2 (the retry stored nothing)", head)
	}
}

// testConcurrentRetries sends one publish with one Idempotency-Key from
// several goroutines at once: exactly one creates the notification, the
// others get its answer, replayed.
func testConcurrentRetries(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	m := msg("once", store.Targets{Employees: []int64{1, 2}})
	idem := &store.Idempotency{Owner: "svc", Key: "retry", Hash: "h"}
	const n = 8
	results := make(chan store.PublishResult, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := st.Publish(ctx(), m, idem)
			if err != nil {
				t.Errorf("concurrent retry: %v", err)
				return
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	created := 0
	var id int64
	for res := range results {
		if !res.Replayed {
			created++
		}
		if id != 0 && res.NotificationID != id {
			t.Fatalf("retries answered with notifications %d and %d; want one", id, res.NotificationID)
		}
		id = res.NotificationID
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent retries created a notification; want exactly 1", created, n)
	}
	for _, e := range []int64{1, 2} {
		if head, _ := st.Head(ctx(), e); head != 1 {
			t.Fatalf("employee %d head = %d after concurrent retries, want 1", e, head)
		}
	}
}

// testConcurrentFailureIsolated publishes at once: fresh publishes, a
// retry of an earlier Idempotency-Key and a reuse of that key with another
// body. Stores that write concurrent publishes together must keep each one
// all-or-nothing: the reuse fails alone, the retry gets the first answer,
// every fresh publish is stored and delivered, seqs without gaps.
func testConcurrentFailureIsolated(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	to := store.Targets{Employees: []int64{1, 2}}
	idem := &store.Idempotency{Owner: "svc", Key: "k", Hash: "h1"}
	first, err := st.Publish(ctx(), msg("first", to), idem)
	if err != nil {
		t.Fatal(err)
	}
	const fresh = 12
	type outcome struct {
		res store.PublishResult
		err error
	}
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		outs     = make([]outcome, fresh)
		retry    outcome
		mismatch outcome
	)
	run := func(o *outcome, m store.Message, idem *store.Idempotency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			o.res, o.err = st.Publish(ctx(), m, idem)
		}()
	}
	for i := range fresh {
		run(&outs[i], msg(fmt.Sprintf("fresh %d", i), to), nil)
		if i == fresh/2 {
			run(&mismatch, msg("other body", to), &store.Idempotency{Owner: "svc", Key: "k", Hash: "h2"})
			run(&retry, msg("first", to), idem)
		}
	}
	close(start)
	wg.Wait()
	for i, o := range outs {
		if o.err != nil || o.res.Replayed || o.res.Recipients != 2 {
			t.Errorf("fresh publish %d = %+v, %v; want stored for 2", i, o.res, o.err)
		}
	}
	if !errors.Is(mismatch.err, store.ErrIdempotencyMismatch) {
		t.Errorf("key reused with another body: %v; want ErrIdempotencyMismatch", mismatch.err)
	}
	if retry.err != nil || !retry.res.Replayed || retry.res.NotificationID != first.NotificationID {
		t.Errorf("retry = %+v, %v; want the first answer (notification %d), replayed", retry.res, retry.err, first.NotificationID)
	}
	h.Sink.Wait(t, "every fresh publish", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) == fresh+1 })
	last := map[int64]int64{}
	for _, d := range h.Sink.Deliveries() {
		if d.Notification.Title == "other body" {
			t.Fatalf("the refused publish was delivered: %+v", d)
		}
		for _, r := range d.Recipients {
			if r.Seq != last[r.Employee]+1 {
				t.Fatalf("employee %d: seq %d delivered after %d", r.Employee, r.Seq, last[r.Employee])
			}
			last[r.Employee] = r.Seq
		}
	}
	for _, e := range []int64{1, 2} {
		if head, _ := st.Head(ctx(), e); head != fresh+1 {
			t.Errorf("employee %d head = %d, want %d", e, head, fresh+1)
		}
	}
}

func testEphemeral(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 1)
	m := msg("typing", store.Targets{Employees: []int64{2, 50}, Emails: []string{"user3@corp.example"}, Roles: []string{"admin"}})
	m.Event = "typing"
	m.Data = json.RawMessage(`{"k":1}`)
	res, err := st.PublishEphemeral(ctx(), m, nil)
	if err != nil || res.NotificationID != 0 || res.Recipients != 3 || !slices.Equal(res.Unknown.Employees, []int64{50}) {
		t.Fatalf("PublishEphemeral = %+v, %v; want no id, 3 recipients, 50 unknown", res, err)
	}
	h.Sink.Wait(t, "ephemeral", func(_ []store.Delivery, e []store.Ephemeral, _ []Change) bool { return len(e) == 1 })
	e := h.Sink.Ephemerals()[0]
	got := slices.Clone(e.Employees)
	slices.Sort(got)
	if !slices.Equal(got, []int64{1, 2, 3}) || e.Event != "typing" || string(e.Data) != `{"k":1}` || !slices.Equal(e.Roles, []string{"admin"}) || e.All {
		t.Fatalf("ephemeral delivered as %+v", e)
	}
	for id := int64(1); id <= 3; id++ {
		if head, _ := st.Head(ctx(), id); head != 0 {
			t.Fatalf("ephemeral stored something: head of %d = %d", id, head)
		}
	}
	idem := &store.Idempotency{Owner: "o", Key: "eph", Hash: "h"}
	if _, err := st.PublishEphemeral(ctx(), m, idem); err != nil {
		t.Fatal(err)
	}
	again, err := st.PublishEphemeral(ctx(), m, idem)
	if err != nil || !again.Replayed {
		t.Fatalf("ephemeral retry = %+v, %v; want replayed", again, err)
	}
	all := msg("all", store.Targets{All: true})
	if res, _ := st.PublishEphemeral(ctx(), all, nil); res.Recipients != 3 {
		t.Fatalf("ephemeral to all reached %d, want 3", res.Recipients)
	}
	h.Sink.Wait(t, "ephemerals", func(_ []store.Delivery, e []store.Ephemeral, _ []Change) bool { return len(e) == 3 })
	if e := h.Sink.Ephemerals()[2]; !e.All {
		t.Fatalf("ephemeral to all delivered without All: %+v", e)
	}
}

// testConcurrentPublishers checks the rule streams depend on: per employee,
// seqs are gapless and the sink sees them in increasing order.
func testConcurrentPublishers(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Overlapping recipient sets in both orders: locks must not deadlock.
				to := []int64{1, 2, 3}
				if (w+i)%2 == 1 {
					to = []int64{3, 2, 1}
				}
				if _, err := st.Publish(ctx(), msg(fmt.Sprintf("w%d-%d", w, i), store.Targets{Employees: to}), nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent publish: %v", err)
	}
	const total = workers * each
	h.Sink.Wait(t, "all deliveries", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool { return len(d) == total })
	last := map[int64]int64{}
	for _, d := range h.Sink.Deliveries() {
		for _, r := range d.Recipients {
			if r.Seq != last[r.Employee]+1 {
				t.Fatalf("employee %d: delivery seq %d after %d; want commit order without gaps", r.Employee, r.Seq, last[r.Employee])
			}
			last[r.Employee] = r.Seq
		}
	}
	for id := int64(1); id <= 3; id++ {
		items, _ := st.Since(ctx(), id, 0, 1000)
		if len(items) != total || items[0].Seq != 1 || items[total-1].Seq != total {
			t.Fatalf("employee %d has %d items (seq %d..%d), want 1..%d", id, len(items), items[0].Seq, items[len(items)-1].Seq, total)
		}
	}
}

func testLargeFanout(t *testing.T, h *Harness) {
	const n = 3000
	st := h.Store
	// Seed fast through the directory: one put per employee is the API.
	Seed(t, st, n, 0)
	start := time.Now()
	res := mustPublish(t, st, msg("everyone", store.Targets{All: true}))
	took := time.Since(start)
	if res.Recipients != n {
		t.Fatalf("broadcast reached %d, want %d", res.Recipients, n)
	}
	t.Logf("broadcast to %d employees stored in %v", n, took)
	h.Sink.Wait(t, "broadcast delivery", func(d []store.Delivery, _ []store.Ephemeral, _ []Change) bool {
		return len(d) == 1 && len(d[0].Recipients) == n
	})
	if items, _ := st.Since(ctx(), n, 0, 10); len(items) != 1 || items[0].Seq != 1 {
		t.Fatalf("employee %d inbox = %+v", n, items)
	}
}

func testDataRoundTrip(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 1, 0)
	m := msg("data", store.Targets{Employees: []int64{1}})
	m.Data = json.RawMessage(`{"request_id":481,"nested":{"ok":true},"text":"ñ \u2028"}`)
	mustPublish(t, st, m)
	mustPublish(t, st, msg("nodata", store.Targets{Employees: []int64{1}}))
	items, err := st.Since(ctx(), 1, 0, 10)
	if err != nil || len(items) != 2 {
		t.Fatalf("Since = %d items, %v", len(items), err)
	}
	var got, want any
	_ = json.Unmarshal(items[0].Notification.Data, &got)
	_ = json.Unmarshal(m.Data, &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("data = %s, want %s", items[0].Notification.Data, m.Data)
	}
	if items[1].Notification.Data != nil {
		t.Fatalf("no data stored as %q, want nil", items[1].Notification.Data)
	}
	if d := time.Since(items[0].Notification.CreatedAt); d < 0 || d > time.Minute {
		t.Fatalf("created_at %v is not now", items[0].Notification.CreatedAt)
	}
}
