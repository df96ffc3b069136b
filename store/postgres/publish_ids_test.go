package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestPublishIDsMatchesPublishBatch: herald_publish_ids, which stores the
// batches whose publishes name employees by ID only, writes and sends what
// herald_publish_batch does for the same batch. Two databases with the same
// directory and mutes each store one batch, one through each function, and
// everything is compared: the answers, the notifications, the copies (seqs,
// mutes), the employees' seqs, the counts and the NOTIFY payloads. The
// batch has a muted recipient, a required notification to a muted one,
// unknown and repeated IDs, an employee named by three messages, a message
// to nobody, and one with more live recipients than inline_max.
func TestPublishIDsMatchesPublishBatch(t *testing.T) {
	const batch = `[
		{"ty":"build.failed","ti":"one","bo":"b","da":null,"pu":"ci","all":false,"ids":[1,2,3],"em":[],"ro":[]},
		{"ty":"build.failed","ti":"two","bo":"","da":"{\"n\":2}","pu":"ci","all":false,"ids":[3,4],"em":[],"ro":[],"rq":true,"ow":"ci"},
		{"ty":"deploy","ti":"three","bo":"b","da":"[1, 2]","pu":"cd","all":false,"ids":[2,99,2,5],"em":[],"ro":[],
			"ur":"https://example.com/x","ex":"2030-01-02T03:04:05.678Z"},
		{"ty":"x","ti":"nobody","bo":"","da":null,"pu":"p","all":false,"ids":[99],"em":[],"ro":[]},
		{"ty":"build.ok","ti":"all six","bo":"","da":null,"pu":"ci","all":false,"ids":[6,5,4,3,2,1],"em":[],"ro":[]}
	]`
	created := time.Date(2026, 12, 6, 12, 0, 0, 123000000, time.UTC)
	run := func(fn string) (state []string, payloads []string) {
		u := pgtest.NewDatabase(t)
		db := mustOpenURL(t, u)
		storetest.Seed(t, db, 6, 0)
		ctx := context.Background()
		for emp, muted := range map[int64][]string{3: {"build.*"}, 5: {"deploy"}} {
			if err := db.SetPreferences(ctx, emp, store.Preferences{Muted: muted, Push: true}); err != nil {
				t.Fatal(err)
			}
		}
		ch := rawListener(t, u)
		conn := rawDB(t, u)
		rows, err := conn.QueryContext(ctx, `SELECT k, id, recipients, known_ids, known_emails, notified FROM `+fn+`($1, $2, 'herald', 2)`, batch, created)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		for rows.Next() {
			var k, id, recipients int64
			var ids pq.Int64Array
			var emails pq.StringArray
			var notified sql.NullBool
			if err := rows.Scan(&k, &id, &recipients, &ids, &emails, &notified); err != nil {
				t.Fatal(err)
			}
			slices.Sort(ids)
			state = append(state, fmt.Sprintf("answer k=%d id=%d recipients=%d known=%v emails=%v notified=%v", k, id, recipients, ids, emails, notified))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		rows.Close()
		for _, q := range []string{
			`SELECT id, type, title, body, coalesce(data::text, 'NULL'), publisher, recipients, created_at, coalesce(url, 'NULL'),
				coalesce(expires_at::text, 'NULL'), required, owner FROM notifications ORDER BY id`,
			`SELECT employee_id, seq, notification_id, type, coalesce(expires_at::text, 'NULL'), muted,
				coalesce(read_at::text, 'NULL'), coalesce(seen_at::text, 'NULL') FROM inbox ORDER BY employee_id, seq`,
			`SELECT id, last_seq FROM employees ORDER BY id`,
			`SELECT employee_id, unread, unseen FROM inbox_counts ORDER BY employee_id`,
		} {
			state = append(state, rowsOf(t, conn, q)...)
		}
		// Four messages reach somebody live; the refs' order is not part of
		// the contract.
		for range 4 {
			head, refs, _ := strings.Cut(nextPayload(t, ch), " ")
			list := strings.Split(refs, ",")
			slices.Sort(list)
			payloads = append(payloads, head+" "+strings.Join(list, ","))
		}
		return state, payloads
	}
	wantState, wantPayloads := run("herald_publish_batch")
	gotState, gotPayloads := run("herald_publish_ids")
	if !slices.Equal(gotState, wantState) {
		t.Errorf("herald_publish_ids stored:\n%s\nherald_publish_batch stored:\n%s", strings.Join(gotState, "\n"), strings.Join(wantState, "\n"))
	}
	if !slices.Equal(gotPayloads, wantPayloads) {
		t.Errorf("herald_publish_ids sent %q; herald_publish_batch sent %q", gotPayloads, wantPayloads)
	}
	// The batch is not trivial: the second message reaches the employee who
	// muted its type, the third skips its muted and unknown recipients,
	// and the fifth is too large to carry its recipients.
	for _, want := range []string{
		"answer k=2 id=2 recipients=2 known=[3 4] emails=[] notified={true true}",
		"answer k=3 id=3 recipients=2 known=[2 5] emails=[] notified={true true}",
		"answer k=4 id=4 recipients=0 known=[] emails=[] notified={false false}",
	} {
		if !slices.Contains(gotState, want) {
			t.Errorf("no %q among the answers:\n%s", want, strings.Join(gotState, "\n"))
		}
	}
	if gotPayloads[3] != "n5 " {
		t.Errorf("the fifth message sent %q; want its id alone (6 recipients, inline_max 2)", gotPayloads[3])
	}
}

// rowsOf returns the rows of q, each as one line of its columns.
func rowsOf(t *testing.T, conn *sqlx.DB, q string) []string {
	t.Helper()
	rows, err := conn.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPublishNotHeldBehindAStuckBatch: one batch is written at a time
// while batches are quick, but a batch that runs long (here, one waiting
// for a row lock another transaction holds) does not hold the next
// publishes back: after a few milliseconds the second worker writes them
// beside it. With one worker the second publish would wait for the lock.
func TestPublishNotHeldBehindAStuckBatch(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 2, 0)
	ctx := context.Background()
	conn := rawDB(t, u)
	blocker, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.ExecContext(ctx, `SELECT 1 FROM employees WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	go func() {
		_, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "stuck"}, nil)
		stuck <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first publish never waited for the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := db.Publish(quick, store.Message{To: store.Targets{Employees: []int64{2}}, Type: "t", Title: "quick"}, nil)
	if err != nil || res.Recipients != 1 {
		t.Fatalf("a publish to another employee while a batch is stuck: %+v, %v; want it stored", res, err)
	}
	select {
	case err := <-stuck:
		t.Fatalf("the stuck publish returned (%v) while the lock was held", err)
	default:
	}
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-stuck; err != nil {
		t.Fatalf("the stuck publish, once the lock was released: %v", err)
	}
}
