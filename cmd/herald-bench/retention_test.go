package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/sqlite"
)

// TestSeedOldRowsSQLite: the old rows are ordinary notifications with one
// read copy each, dealt round robin, numbered after each employee's
// latest seq; the employees' heads move past them; what is left is
// counted.
func TestSeedOldRowsSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testSeedOldRows(t, db, "sqlite:"+path)
}

// TestSeedOldRowsPostgres: the same on PostgreSQL, where leftovers are
// removed before seeding and by the count at the end.
func TestSeedOldRowsPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testSeedOldRows(t, st, dsn)
}

func testSeedOldRows(t *testing.T, st store.Store, dsn string) {
	ctx := context.Background()
	e := employees{Count: 3, Base: 1_000_000}
	for i := range e.Count {
		if _, _, err := st.PutEmployee(ctx, store.Employee{ID: e.id(i), Username: username(e.id(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Employee 1 already has a notification: old rows come after it.
	if _, err := st.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{e.id(0)}}, Type: "t", Title: "new"}, nil); err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-100 * 24 * time.Hour).Truncate(time.Millisecond)
	if err := seedOldRows(ctx, dsn, e, 7, created); err != nil {
		t.Fatal(err)
	}
	// 7 over 3 employees: 3, 2, 2.
	for i, want := range []int64{1 + 3, 2, 2} {
		head, err := st.Head(ctx, e.id(i))
		if err != nil || head != want {
			t.Errorf("employee %d: head %d, %v; want %d", i, head, err, want)
		}
	}
	page, err := st.Inbox(ctx, store.InboxQuery{Employee: e.id(0), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 4 || page.UnreadCount != 1 {
		t.Fatalf("inbox of employee 1: %d items, %d unread; want 4 and the 1 new one unread", len(page.Items), page.UnreadCount)
	}
	for _, it := range page.Items[:3] { // newest first: the old ones got the later seqs
		if it.Notification.Type != oldType || it.ReadAt == nil || !it.Notification.CreatedAt.Equal(created) {
			t.Errorf("old item %+v: want type %s, read, created %v", it, oldType, created)
		}
	}
	// The sweep deletes them as any old notification.
	for {
		c, err := st.Sweep(ctx, time.Now().Add(-90*24*time.Hour), 500)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rows == 0 {
			break
		}
	}
	if left, err := oldRowsLeft(ctx, dsn); err != nil || left != 0 {
		t.Errorf("after the sweep: %d left, %v", left, err)
	}
	// Seeding again, and the count at the end sees them.
	if err := seedOldRows(ctx, dsn, e, 5, created); err != nil {
		t.Fatal(err)
	}
	if left, err := oldRowsLeft(ctx, dsn); err != nil || left != 5 {
		t.Errorf("left %d, %v; want 5", left, err)
	}
}

func TestRetentionOn(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want bool
	}{
		{nil, true},
		{[]string{"GOROUTINE_STREAMS=true"}, true},
		{[]string{"RETENTION=0"}, false},
		{[]string{"RETENTION=0", "RETENTION=30d"}, true},
		{[]string{"RETENTION=30d"}, true},
	} {
		if got := retentionOn(c.env); got != c.want {
			t.Errorf("retentionOn(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

// TestSweepSummary: rows deleted before and while publishing, and the
// seconds of the window in which the counter moved.
func TestSweepSummary(t *testing.T) {
	t0 := time.Unix(1_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	w := &sweepWatch{samples: []sweepSample{
		{at(0), 0}, {at(1), 100}, {at(2), 300}, {at(3), 300}, {at(4), 500}, {at(5), 500}, {at(6), 600},
	}}
	rep := w.summarize(at(1.5), at(5))
	if rep.DeletedBefore != 100 || rep.DeletedDuring != 400 || rep.DeletedTotal != 600 || rep.PublishSeconds != 3.5 {
		t.Errorf("summary %+v", rep)
	}
	// Moving in (1,2] (half inside), (3,4]: 1.5 s; (5,6] is after the window.
	if rep.SweepSeconds != 1.5 {
		t.Errorf("sweeping %v s, want 1.5", rep.SweepSeconds)
	}
}

// TestRetentionTarget: the ratio target divides the medians of the run
// with the sweep and of its baseline; old rows left fail their target.
func TestRetentionTarget(t *testing.T) {
	run := func(label string, p99 float64, left int64) Report {
		return Report{Label: label, Command: "herald-bench " + label, Publish: &PublishReport{},
			Delivery:  DeliveryReport{Latency: Summary{P99: p99}},
			Retention: &RetentionReport{OldRows: 10, Retention: label == "retention", Left: left}}
	}
	var b strings.Builder
	writeTargets(&b, groupRuns([]Report{
		run("retention-off", 4, 10), run("retention-off", 6, 10), run("retention-off", 5, 10),
		run("retention", 9, 0), run("retention", 8, 3), run("retention", 7, 0),
	}))
	out := b.String()
	for _, want := range []string{
		"(`retention`) | ≤ 2 × | 1.600 × | 9, 8, 7 ms ÷ 4, 6, 5 ms | met (0.80× the limit)",
		"old notifications left at the end of the run (the worst run), SQLite (`retention`) | ≤ 0  | 3  | 0, 3, 0 | **missed**",
		"(`retention-pg`) | ≤ 2 × | — | — | not measured",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("targets lack %q:\n%s", want, out)
		}
	}
	// A run that could not count what it left (-1) has no figure: not "met".
	b.Reset()
	writeTargets(&b, groupRuns([]Report{run("retention", 9, -1)}))
	if want := "old notifications left at the end of the run (the worst run), SQLite (`retention`) | ≤ 0  | — | — | not measured"; !strings.Contains(b.String(), want) {
		t.Errorf("targets lack %q:\n%s", want, b.String())
	}
}

func TestOldRowsFlags(t *testing.T) {
	_, err := parseConfig([]string{"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--old-rows", "10"}, os.Getenv, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "--old-rows needs --spawn") {
		t.Errorf("--old-rows without --spawn: %v", err)
	}
	c, err := parseConfig([]string{"--spawn", "--old-rows", "10"}, os.Getenv, &strings.Builder{})
	if err != nil || c.OldRows != 10 || c.OldAge != 100*24*time.Hour {
		t.Errorf("--old-rows 10: %+v, %v", c, err)
	}
}
