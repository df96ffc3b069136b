package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

func pushSub(emp int64, endpoint string, key byte) store.PushSubscription {
	return store.PushSubscription{
		Employee: emp, Endpoint: endpoint,
		P256DH: bytes.Repeat([]byte{key}, 65), Auth: bytes.Repeat([]byte{key}, 16),
	}
}

func mustSubscribe(t testing.TB, st store.Store, s store.PushSubscription) {
	t.Helper()
	if _, err := st.SavePushSubscription(ctx(), s, 10); err != nil {
		t.Fatalf("SavePushSubscription(%s): %v", s.Endpoint, err)
	}
}

func endpoints(t testing.TB, st store.Store, emp int64) []string {
	t.Helper()
	subs, err := st.PushSubscriptions(ctx(), emp)
	if err != nil {
		t.Fatalf("PushSubscriptions: %v", err)
	}
	out := []string{}
	for _, s := range subs {
		out = append(out, s.Endpoint)
	}
	return out
}

func testPushSubscriptions(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0)
	created, err := st.SavePushSubscription(ctx(), pushSub(1, "https://push.example/a", 1), 10)
	if err != nil || !created {
		t.Fatalf("first save: created %v, err %v; want true, nil", created, err)
	}
	created, err = st.SavePushSubscription(ctx(), pushSub(1, "https://push.example/a", 2), 10)
	if err != nil || created {
		t.Fatalf("same endpoint again: created %v, err %v; want false, nil", created, err)
	}
	subs, _ := st.PushSubscriptions(ctx(), 1)
	if len(subs) != 1 || subs[0].P256DH[0] != 2 || subs[0].Auth[0] != 2 || len(subs[0].P256DH) != 65 {
		t.Fatalf("after replacing keys: %+v; want one subscription with the new keys", subs)
	}
	// At most max: the oldest by creation goes; re-saving keeps the place.
	if err := st.DeletePushSubscription(ctx(), 1, "https://push.example/a"); err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		mustSubscribe(t, st, pushSub(1, fmt.Sprintf("https://push.example/%02d", i), 1))
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	mustSubscribe(t, st, pushSub(1, "https://push.example/01", 3))
	got := endpoints(t, st, 1)
	want := []string{}
	for i := 1; i < 11; i++ {
		want = append(want, fmt.Sprintf("https://push.example/%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after 11 saves and a re-save: %v; want %v", got, want)
	}
	// Another employee's delete does nothing; the owner's removes it.
	if err := st.DeletePushSubscription(ctx(), 2, "https://push.example/05"); err != nil {
		t.Fatal(err)
	}
	if n := len(endpoints(t, st, 1)); n != 10 {
		t.Fatalf("employee 2 deleted employee 1's subscription: %d left", n)
	}
	if err := st.DeletePushSubscription(ctx(), 1, "https://push.example/05"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeletePushSubscription(ctx(), 1, "https://push.example/unknown"); err != nil {
		t.Fatalf("deleting an unknown endpoint: %v; want nil", err)
	}
	if n := len(endpoints(t, st, 1)); n != 9 {
		t.Fatalf("after delete: %d subscriptions; want 9", n)
	}
	// An endpoint saved by another employee moves to them.
	created, err = st.SavePushSubscription(ctx(), pushSub(2, "https://push.example/06", 4), 10)
	if err != nil || !created {
		t.Fatalf("endpoint moving to employee 2: created %v, err %v; want true, nil", created, err)
	}
	if got := endpoints(t, st, 2); !slices.Equal(got, []string{"https://push.example/06"}) {
		t.Fatalf("employee 2 has %v", got)
	}
	if n := len(endpoints(t, st, 1)); n != 8 {
		t.Fatalf("employee 1 still has %d; want 8", n)
	}
	if _, err := st.SavePushSubscription(ctx(), pushSub(99, "https://push.example/x", 1), 10); err == nil {
		t.Fatal("a subscription for an unknown employee was saved")
	}
}

// queueAt decides everything due at now (delay 10 s) and returns what it
// queued.
func queueAt(t testing.TB, st store.Store, now time.Time) int {
	t.Helper()
	total := 0
	for {
		n, more, err := st.QueuePushes(ctx(), store.PushRule{Now: now, Delay: 10 * time.Second, TTL: 24 * time.Hour, Limit: 2})
		if err != nil {
			t.Fatalf("QueuePushes: %v", err)
		}
		total += n
		if !more {
			return total
		}
	}
}

func claimAll(t testing.TB, st store.Store, now time.Time) []store.PushJob {
	t.Helper()
	jobs, err := st.ClaimPushes(ctx(), now, time.Minute, 100)
	if err != nil {
		t.Fatalf("ClaimPushes: %v", err)
	}
	return jobs
}

func jobKeys(jobs []store.PushJob) []string {
	out := []string{}
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("%s#%d:%s", j.Subscription.Endpoint, j.Seq, j.Notification.Title))
	}
	slices.Sort(out)
	return out
}

func testPushQueue(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 4, 0)
	mustPublish(t, st, msg("before", store.Targets{Employees: []int64{1}})) // before any subscription
	mustSubscribe(t, st, pushSub(1, "https://push.example/1a", 1))
	mustSubscribe(t, st, pushSub(1, "https://push.example/1b", 1))
	mustSubscribe(t, st, pushSub(2, "https://push.example/2", 1))
	mustSubscribe(t, st, pushSub(3, "https://push.example/3", 1))
	mustPublish(t, st, msg("one", store.Targets{Employees: []int64{1, 2, 3, 4}}))
	mustPublish(t, st, msg("two", store.Targets{Employees: []int64{1, 2, 3}}))
	start := time.Now()

	if n := queueAt(t, st, start); n != 0 {
		t.Fatalf("queued %d before the delay; want 0", n)
	}
	// Employee 2 read "one"; employee 3's copies were written to a stream.
	if _, _, err := st.MarkRead(ctx(), 2, []int64{1}, false); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkStreamed(ctx(), []store.Streamed{{Employee: 3, From: 1, To: 2}, {Employee: 4, From: 1, To: 1}}); err != nil {
		t.Fatal(err)
	}
	later := start.Add(11 * time.Second)
	if n := queueAt(t, st, later); n != 5 {
		t.Fatalf("queued %d; want 5 (two subscriptions of 1 × two, 2's unread one)", n)
	}
	if n := queueAt(t, st, later.Add(time.Hour)); n != 0 {
		t.Fatalf("deciding again queued %d; want 0 (decided once)", n)
	}
	if d, err := st.PushQueueDepth(ctx()); err != nil || d != 5 {
		t.Fatalf("PushQueueDepth = %d, %v; want 5", d, err)
	}
	jobs := claimAll(t, st, later)
	want := []string{
		"https://push.example/1a#2:one", "https://push.example/1a#3:two",
		"https://push.example/1b#2:one", "https://push.example/1b#3:two",
		"https://push.example/2#2:two",
	}
	if got := jobKeys(jobs); !slices.Equal(got, want) {
		t.Fatalf("claimed %v; want %v", got, want)
	}
	j := jobs[0]
	if ttl := j.Expires.Sub(later); j.Attempts != 1 || j.Subscription.Employee == 0 || len(j.Subscription.Auth) != 16 ||
		ttl < 24*time.Hour-time.Second || ttl > 24*time.Hour+time.Second {
		t.Fatalf("job %+v: want attempts 1, its subscription, expiry a day later", j)
	}
	if again := claimAll(t, st, later); len(again) != 0 {
		t.Fatalf("claimed %d leased jobs again; want 0", len(again))
	}
	// Retry one, complete one, drop a subscription.
	byKey := map[string]store.PushJob{}
	for _, j := range jobs {
		byKey[fmt.Sprintf("%s#%d", j.Subscription.Endpoint, j.Seq)] = j
	}
	if err := st.RetryPush(ctx(), byKey["https://push.example/2#2"].ID, later.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.CompletePush(ctx(), byKey["https://push.example/1a#2"].ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DropPushSubscription(ctx(), byKey["https://push.example/1b#2"].Subscription.ID); err != nil {
		t.Fatal(err)
	}
	if got := endpoints(t, st, 1); !slices.Equal(got, []string{"https://push.example/1a"}) {
		t.Fatalf("after drop employee 1 has %v", got)
	}
	if d, _ := st.PushQueueDepth(ctx()); d != 2 {
		t.Fatalf("PushQueueDepth = %d; want 2 (1a#3 leased, 2#2 retrying)", d)
	}
	if got := jobKeys(claimAll(t, st, later.Add(5*time.Second))); !slices.Equal(got, []string{"https://push.example/2#2:two"}) {
		t.Fatalf("claimed at the retry time: %v", got)
	}
	// A lease that ran out (its instance died) is taken again.
	again := claimAll(t, st, later.Add(2*time.Minute))
	if got := jobKeys(again); !slices.Equal(got, []string{"https://push.example/1a#3:two", "https://push.example/2#2:two"}) {
		t.Fatalf("claimed after the leases ran out: %v", got)
	}
	for _, j := range again {
		if j.Attempts != 2 && j.Attempts != 3 {
			t.Fatalf("job %s#%d attempts %d", j.Subscription.Endpoint, j.Seq, j.Attempts)
		}
	}
	// A copy published now waits for its own delay; the cursor does not
	// pass it.
	mustPublish(t, st, msg("three", store.Targets{Employees: []int64{1}}))
	now := time.Now()
	if n := queueAt(t, st, now); n != 0 {
		t.Fatalf("queued %d for a fresh copy; want 0", n)
	}
	if n := queueAt(t, st, now.Add(11*time.Second)); n != 1 {
		t.Fatalf("queued %d after the delay; want 1", n)
	}
	// Deleting the employee removes their subscriptions and jobs.
	if err := st.DeleteEmployee(ctx(), 1); err != nil {
		t.Fatal(err)
	}
	if got := jobKeys(claimAll(t, st, now.Add(time.Hour))); !slices.Equal(got, []string{"https://push.example/2#2:two"}) {
		t.Fatalf("after deleting employee 1: %v", got)
	}
}

// testPushConcurrent checks that deciders and claimers running at once (as
// on several instances) queue each copy once per subscription and hand
// each job to one claimer.
func testPushConcurrent(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 20, 0)
	for e := int64(1); e <= 20; e++ {
		mustSubscribe(t, st, pushSub(e, fmt.Sprintf("https://push.example/%d", e), 1))
	}
	for i := range 5 {
		mustPublish(t, st, msg(fmt.Sprintf("n%d", i), store.Targets{All: true}))
	}
	later := time.Now().Add(11 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	queued := 0
	claimed := map[int64]int{}
	for range 4 {
		wg.Go(func() {
			n := queueAt(t, st, later)
			jobs, err := st.ClaimPushes(ctx(), later, time.Minute, 30)
			if err != nil {
				t.Errorf("ClaimPushes: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			queued += n
			for _, j := range jobs {
				claimed[j.ID]++
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if queued != 100 {
		t.Fatalf("queued %d; want 100 (20 subscriptions × 5)", queued)
	}
	rest := claimAll(t, st, later)
	for _, j := range rest {
		claimed[j.ID]++
	}
	if len(claimed) != 100 {
		t.Fatalf("claimed %d distinct jobs; want 100", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("job %d claimed %d times", id, n)
		}
	}
}

// testPushSettle checks SettlePushes: one write completes, retries and
// drops subscriptions.
func testPushSettle(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	for e := int64(1); e <= 3; e++ {
		mustSubscribe(t, st, pushSub(e, fmt.Sprintf("https://push.example/%d", e), 1))
	}
	mustPublish(t, st, msg("one", store.Targets{Employees: []int64{1, 2, 3}}))
	mustPublish(t, st, msg("two", store.Targets{Employees: []int64{3}}))
	later := time.Now().Add(11 * time.Second)
	queueAt(t, st, later)
	jobs := claimAll(t, st, later)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d; want 4", len(jobs))
	}
	var outcomes []store.PushOutcome
	for _, j := range jobs {
		switch j.Subscription.Endpoint {
		case "https://push.example/1": // sent
			outcomes = append(outcomes, store.PushOutcome{Job: j.ID})
		case "https://push.example/2": // retried
			outcomes = append(outcomes, store.PushOutcome{Job: j.ID, Retry: later.Add(time.Hour)})
		case "https://push.example/3": // gone (both of its jobs)
			outcomes = append(outcomes, store.PushOutcome{Job: j.ID, DropSubscription: j.Subscription.ID})
		}
	}
	if err := st.SettlePushes(ctx(), outcomes); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.PushQueueDepth(ctx()); d != 1 {
		t.Fatalf("PushQueueDepth = %d; want 1 (the retry)", d)
	}
	if n := len(endpoints(t, st, 3)); n != 0 {
		t.Fatalf("employee 3 still has %d subscriptions", n)
	}
	if got := jobKeys(claimAll(t, st, later.Add(time.Hour))); !slices.Equal(got, []string{"https://push.example/2#1:one"}) {
		t.Fatalf("claimed at the retry time: %v", got)
	}
	if err := st.SettlePushes(ctx(), nil); err != nil {
		t.Fatalf("settling nothing: %v", err)
	}
}

// testPushCenter checks the notification center's conditions of a push:
// seen, muted (at publish or later; required overrides), push turned off,
// expired; and that the url travels.
func testPushCenter(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 3, 0)
	for e := int64(1); e <= 3; e++ {
		mustSubscribe(t, st, pushSub(e, fmt.Sprintf("https://push.example/%d", e), 1))
	}
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Muted: []string{"muted.*"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPreferences(ctx(), 3, store.Preferences{Muted: []string{}, Push: false}); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(5 * time.Second)
	pub := func(title, typ string, required bool, to ...int64) {
		m := msg(title, store.Targets{Employees: to})
		m.Type, m.Required, m.URL = typ, required, "/requests/"+title
		if title == "expiring" {
			m.ExpiresAt = &soon
		}
		mustPublish(t, st, m)
	}
	pub("seen", "test.event", false, 1)      // 1
	pub("muted", "muted.weekly", false, 1)   // 2: stored muted
	pub("required", "muted.weekly", true, 1) // 3
	pub("later", "later.muted", false, 1)    // 4: muted after publish
	pub("expiring", "test.event", false, 1)  // 5
	pub("kept", "test.event", false, 1)      // 6
	pub("push off", "test.event", false, 3)
	if _, _, err := st.SetState(ctx(), 1, store.OpSeen, []int64{1}, false); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPreferences(ctx(), 1, store.Preferences{Muted: []string{"muted.*", "later.muted"}, Push: true}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(11 * time.Second) // after "expiring" expired
	if n := queueAt(t, st, later); n != 2 {
		t.Fatalf("queued %d; want 2 (required, kept)", n)
	}
	jobs := claimAll(t, st, later)
	if got := jobKeys(jobs); !slices.Equal(got, []string{"https://push.example/1#3:required", "https://push.example/1#6:kept"}) {
		t.Fatalf("claimed %v", got)
	}
	for _, j := range jobs {
		if j.Notification.URL != "/requests/"+j.Notification.Title {
			t.Errorf("job %s: url %q", j.Notification.Title, j.Notification.URL)
		}
	}
}

// testPushStreamedAndLimit: MarkStreamed marks the copies of every
// subscribed employee it is given (an unsubscribed one among them changes
// nothing), QueuePushes reports more only when more subscriptions than
// its limit have undecided due copies, and a settled job is deleted when
// its outcome drops a subscription.
func testPushStreamedAndLimit(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 4, 0)
	for e := int64(1); e <= 3; e++ {
		mustSubscribe(t, st, pushSub(e, fmt.Sprintf("https://push.example/%d", e), 1))
	}
	mustPublish(t, st, msg("one", store.Targets{Employees: []int64{1, 2, 3, 4}}))
	mustPublish(t, st, msg("two", store.Targets{Employees: []int64{1, 2, 3, 4}}))
	// Employees 1 and 2 had both copies written to a stream, 3 only the first.
	if err := st.MarkStreamed(ctx(), []store.Streamed{{Employee: 4, From: 1, To: 2}, {Employee: 1, From: 1, To: 2}, {Employee: 2, From: 1, To: 2}, {Employee: 3, From: 1, To: 1}}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(11 * time.Second)
	queue := func(limit int) (int, bool) {
		t.Helper()
		n, more, err := st.QueuePushes(ctx(), store.PushRule{Now: later, Delay: 10 * time.Second, TTL: time.Hour, Limit: limit})
		if err != nil {
			t.Fatalf("QueuePushes: %v", err)
		}
		return n, more
	}
	// Three subscriptions have undecided due copies: a limit of 3 decides
	// them all, with no more to come, and queues employee 3's second copy
	// only.
	if n, more := queue(3); n != 1 || more {
		t.Fatalf("QueuePushes(limit 3) = %d, more %v; want 1 (employee 3's second copy), no more", n, more)
	}
	if got := jobKeys(claimAll(t, st, later)); !slices.Equal(got, []string{"https://push.example/3#2:two"}) {
		t.Fatalf("claimed %v; want only employee 3's unstreamed copy", got)
	}
	mustPublish(t, st, msg("three", store.Targets{Employees: []int64{1, 2, 3}}))
	later = time.Now().Add(11 * time.Second)
	if n, more := queue(2); n != 2 || !more {
		t.Fatalf("QueuePushes(limit 2) of 3 due subscriptions = %d, more %v; want 2, more", n, more)
	}
	if n, more := queue(1); n != 1 || more {
		t.Fatalf("QueuePushes(limit 1) of the last due subscription = %d, more %v; want 1, no more", n, more)
	}
	// An outcome that drops a subscription deletes its job too, even when
	// the subscription dropped is another one (with its own jobs).
	byEmp := map[int64]store.PushJob{}
	for _, j := range claimAll(t, st, later) {
		byEmp[j.Subscription.Employee] = j
	}
	if len(byEmp) != 3 {
		t.Fatalf("claimed jobs of %d employees; want 3", len(byEmp))
	}
	if err := st.SettlePushes(ctx(), []store.PushOutcome{{Job: byEmp[1].ID, DropSubscription: byEmp[2].Subscription.ID}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.PushQueueDepth(ctx()); d != 2 {
		t.Fatalf("PushQueueDepth = %d; want 2 (employee 3's two jobs: employee 1's settled, employee 2's dropped with its subscription)", d)
	}
	if n := len(endpoints(t, st, 2)); n != 0 {
		t.Fatalf("employee 2 still has %d subscriptions", n)
	}
}
