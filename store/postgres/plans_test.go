package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestCenterPlansKept: the calls an employee's client makes most (a page
// of the inbox, the counts, the replay of a stream, a state change) run on
// plans PostgreSQL keeps from call to call, not on plans made again for
// each call's values, which took longer than running them on an inbox of
// tens of thousands of items. PostgreSQL plans a prepared statement for
// its values for its first five calls, then keeps the generic plan only if
// it does not look dearer; a parameter whose value the estimate needs (a
// LIMIT, a time compared with a column) made it look dearer.
func TestCenterPlansKept(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u, postgres.WithMaxConns(1))
	storetest.Seed(t, db, 2, 0)
	x := rawDB(t, u)
	// 50,000 items for employee 1, a few expiring, and 1,000 for
	// employee 2; then the statistics of a long-lived database.
	for _, q := range []string{
		`INSERT INTO notifications (type, title, recipients, created_at, expires_at)
			SELECT 'plans.t', 'n' || g, 1, now(), CASE WHEN g % 100 = 0 THEN now() + interval '1 day' END
			FROM generate_series(1, 51000) g`,
		`INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at)
			SELECT CASE WHEN id <= 50000 THEN 1 ELSE 2 END, CASE WHEN id <= 50000 THEN id ELSE id - 50000 END, id, type, expires_at
			FROM notifications`,
		`UPDATE employees SET last_seq = CASE id WHEN 1 THEN 50000 ELSE 1000 END WHERE id IN (1, 2)`,
	} {
		if _, err := x.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	const calls = 12
	// Item 25,000 is read after an even call's state change, unread
	// again after an odd one's.
	for i := range calls {
		p, err := db.Inbox(ctx, store.InboxQuery{Employee: 1, Limit: 50})
		if err != nil || len(p.Items) != 50 || p.UnreadCount != 50000-i%2 {
			t.Fatalf("page: %d items, %d unread, %v", len(p.Items), p.UnreadCount, err)
		}
		if c, err := db.Counts(ctx, 1); err != nil || c.Unread != 50000-i%2 {
			t.Fatalf("counts %+v, %v", c, err)
		}
		if items, err := db.Since(ctx, 1, 49000, 1000); err != nil || len(items) != 1000 {
			t.Fatalf("since: %d items, %v", len(items), err)
		}
		op := store.OpRead
		if i%2 == 1 {
			op = store.OpUnread
		}
		if n, _, err := db.SetState(ctx, 1, op, []int64{25000}, false); err != nil || n != 1 {
			t.Fatalf("%s: %d changed, %v", op, n, err)
		}
	}
	plans, err := db.PlanCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, find := range map[string]func(string) bool{
		"page":         func(s string) bool { return strings.Contains(s, "ORDER BY i.seq DESC") },
		"counts":       func(s string) bool { return s == postgres.CountsSQL },
		"since":        func(s string) bool { return strings.Contains(s, "i.seq > $2") },
		"state change": func(s string) bool { return s == postgres.SetStateSQL },
	} {
		found := false
		for s, n := range plans {
			if !find(s) {
				continue
			}
			found = true
			// The first five calls are planned for their values.
			if n[1] > 5 || n[0] < calls-5 {
				t.Errorf("%s: %d calls on the generic plan, %d planned for their values; want at least %d and at most 5", name, n[0], n[1], calls-5)
			}
		}
		if !found {
			t.Errorf("%s: not among the prepared statements %v", name, plans)
		}
	}
}

// TestMarksCommitWithoutFlush: a mark (read, unread, seen, archive,
// unarchive) turns synchronous_commit off for its own transaction, and a
// deletion does not (migration 00012): checked inside a transaction that
// is rolled back.
func TestMarksCommitWithoutFlush(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	ctx := context.Background()
	if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "one"}, nil); err != nil {
		t.Fatal(err)
	}
	x := rawDB(t, u)
	for _, op := range store.StateOps {
		for _, all := range []bool{false, true} {
			tx, err := x.Beginx()
			if err != nil {
				t.Fatal(err)
			}
			var setting string
			_, err = tx.Exec(`SELECT * FROM herald_set_state(1, $1, now(), $2, '{1}', 'herald_test')`, string(op), all)
			if err == nil {
				err = tx.Get(&setting, `SHOW synchronous_commit`)
			}
			tx.Rollback()
			if err != nil {
				t.Fatalf("%s (all %v): %v", op, all, err)
			}
			want := "off"
			if op == store.OpDelete {
				want = "on"
			}
			if setting != want {
				t.Errorf("%s (all %v): synchronous_commit %s after the change, want %s", op, all, setting, want)
			}
		}
	}
}
