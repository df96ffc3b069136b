package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// sweepLock is the advisory lock key that lets one instance at a time run
// the retention sweep ("herald-s" in ASCII).
const sweepLock int64 = 0x6865_7261_6c64_2d73

// setStateSQL changes the state of some of an employee's copies, or all,
// in one statement (migration 00009): the lock, the change, the counts and
// the state event.
const setStateSQL = `SELECT changed, unread, unseen FROM herald_set_state($1, $2, $3, $4, $5, $6)`

// tx runs fn in a transaction and commits it.
func (db *DB) tx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, db.opts.callTimeout)
	defer cancel()
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return wrap(ctx, op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return wrap(ctx, op, err)
	}
	return wrap(ctx, op+": commit", inFlight(tx.Commit()))
}

// SetState applies op to seqs (or all) of the employee's inbox and
// notifies every instance of the change, at commit: one statement,
// herald_set_state (migration 00009). Changes of one employee take an
// advisory lock on the employee's ID, so their counts are computed one
// after the other and the last change's counts are the current ones.
func (db *DB) SetState(ctx context.Context, employee int64, op store.StateOp, seqs []int64, all bool) (int, store.Counts, error) {
	if !slices.Contains(store.StateOps, op) {
		return 0, store.Counts{}, fmt.Errorf("set state: unknown operation %q", op)
	}
	if !all && len(seqs) == 0 {
		c, err := db.Counts(ctx, employee)
		return 0, c, err
	}
	if seqs == nil {
		seqs = []int64{}
	}
	var (
		n int
		c store.Counts
	)
	// A prepared statement: one round trip (a one-off query with arguments
	// is two with lib/pq, Parse and Describe, then Bind and Execute).
	stmt, err := db.prepared(ctx, setStateSQL)
	if err == nil {
		err = inFlight(stmt.QueryRowxContext(ctx, employee, string(op), now(), all, pq.Int64Array(seqs), channel).
			Scan(&n, &c.Unread, &c.Unseen))
	}
	if err != nil {
		return 0, store.Counts{}, wrap(ctx, "set state", err)
	}
	return n, c, nil
}

// notifyStates sends the changes to every instance (at commit).
func notifyStates(ctx context.Context, q querier, changes []store.StateChange) error {
	var payloads []string
	for _, c := range changes {
		payloads = append(payloads, statePayloads(c)...)
	}
	if len(payloads) == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, k) ORDER BY k`,
		channel, pq.StringArray(payloads))
	if err != nil {
		return fmt.Errorf("notify state: %w", err)
	}
	return nil
}

// countsSQL reads both counts from inbox_counts (kept by triggers,
// migration 00007), less the expired copies still stored, found through
// inbox_expiring: the same at 100,000 unread items as at 10.
var countsSQL = `SELECT ` + countsAt("$1", "$2")

// countsCols are the two counts of the employee named by the SQL
// expression emp, at time $2.
func countsCols(emp string) string { return countsAt(emp, "$2") }

// countsAt are the two counts of the employee named by the SQL expression
// emp, at the time named by the SQL expression t. The time is read through
// a subquery (opaqueTime), so that the statement's generic plan is kept.
func countsAt(emp, t string) string {
	t = opaqueTime(t)
	return `coalesce((SELECT unread FROM inbox_counts WHERE employee_id = ` + emp + `), 0)
		- (SELECT count(*) FROM inbox WHERE employee_id = ` + emp + ` AND expires_at <= ` + t + ` AND read_at IS NULL AND archived_at IS NULL) AS unread,
	coalesce((SELECT unseen FROM inbox_counts WHERE employee_id = ` + emp + `), 0)
		- (SELECT count(*) FROM inbox WHERE employee_id = ` + emp + ` AND expires_at <= ` + t + ` AND seen_at IS NULL AND archived_at IS NULL) AS unseen`
}

// opaqueTime wraps the SQL parameter t (a time) in a subquery, whose value
// the planner does not look at. A prepared statement is planned for its
// values on its first five calls and then runs its generic plan, planned
// without them, unless that plan looks dearer; compared with a time it
// does not know, a column such as expires_at is estimated a third of the
// rows, where the actual time finds none, so the generic plan looked
// dearer and the page and the counts were planned again on every call
// (0.3-0.4 ms each, more than they take to run). With the time read
// through a subquery both plans are estimated alike and the generic one is
// kept (TestCenterPlansKept); the time is still compared in the index scan.
func opaqueTime(t string) string { return `(SELECT ` + t + `::timestamptz)` }

// Counts returns the employee's unread and unseen counts.
func (db *DB) Counts(ctx context.Context, employee int64) (store.Counts, error) {
	var c store.Counts
	stmt, err := db.prepared(ctx, countsSQL)
	if err == nil {
		err = stmt.QueryRowxContext(ctx, employee, now()).Scan(&c.Unread, &c.Unseen)
	}
	return c, wrap(ctx, "counts", err)
}

// Preferences returns the employee's preferences.
func (db *DB) Preferences(ctx context.Context, employee int64) (store.Preferences, error) {
	var row struct {
		Muted pq.StringArray `db:"muted"`
		Push  bool           `db:"push"`
	}
	err := db.x.GetContext(ctx, &row, `SELECT muted, push FROM preferences WHERE employee_id = $1`, employee)
	if err := noRows(err); err == store.ErrNotFound {
		return store.DefaultPreferences(), nil
	} else if err != nil {
		return store.Preferences{}, wrap(ctx, "read preferences", err)
	}
	p := store.Preferences{Muted: []string(row.Muted), Push: row.Push}
	if p.Muted == nil {
		p.Muted = []string{}
	}
	return p, nil
}

// SetPreferences replaces the employee's preferences.
func (db *DB) SetPreferences(ctx context.Context, employee int64, p store.Preferences) error {
	if p.Muted == nil {
		p.Muted = []string{}
	}
	err := db.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO preferences (employee_id, muted, push, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (employee_id) DO UPDATE SET muted = excluded.muted, push = excluded.push, updated_at = excluded.updated_at`,
			employee, pq.StringArray(p.Muted), p.Push, now())
		return err
	})
	return wrap(ctx, "save preferences", err)
}

// Withdraw removes every copy of notification id published by owner and
// notifies each recipient's streams.
func (db *DB) Withdraw(ctx context.Context, owner string, id int64) error {
	return db.tx(ctx, "withdraw", func(tx *sqlx.Tx) error {
		var one int
		err := tx.GetContext(ctx, &one, `SELECT 1 FROM notifications WHERE id = $1 AND owner = $2 AND owner <> '' FOR UPDATE`, id, owner)
		if err != nil {
			return noRows(err)
		}
		// The recipients' state locks (see SetState), in id order, before
		// the copies go: so the counts sent are current when this commits,
		// and the deletion's update of the counts (a trigger, migration
		// 00007) waits for a state change of the same employee instead of
		// holding the counts while the state change holds the lock. The
		// notification's row lock keeps its copies as they are meanwhile.
		_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(e) FROM (
			SELECT DISTINCT employee_id AS e FROM inbox WHERE notification_id = $1 ORDER BY 1) s`, id)
		if err != nil {
			return err
		}
		var gone []struct {
			Employee int64 `db:"employee_id"`
			Seq      int64 `db:"seq"`
		}
		if err := tx.SelectContext(ctx, &gone, `DELETE FROM inbox WHERE notification_id = $1 RETURNING employee_id, seq`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE id = $1`, id); err != nil {
			return err
		}
		if len(gone) == 0 {
			return nil
		}
		emps := make([]int64, len(gone))
		for i, g := range gone {
			emps[i] = g.Employee
		}
		var cs []struct {
			ID     int64 `db:"id"`
			Unread int   `db:"unread"`
			Unseen int   `db:"unseen"`
		}
		t := now()
		err = tx.SelectContext(ctx, &cs, `SELECT e.id, `+countsCols("e.id")+` FROM unnest($1::bigint[]) AS e(id)`, pq.Int64Array(emps), t)
		if err != nil {
			return err
		}
		byID := make(map[int64]store.Counts, len(cs))
		for _, c := range cs {
			byID[c.ID] = store.Counts{Unread: c.Unread, Unseen: c.Unseen}
		}
		changes := make([]store.StateChange, len(gone))
		for i, g := range gone {
			changes[i] = store.StateChange{Employee: g.Employee, Op: store.OpDelete, Seqs: []int64{g.Seq}, Counts: byID[g.Employee]}
		}
		return notifyStates(ctx, tx, changes)
	})
}

// schedule stores a notification for delivery at m.DeliverAt: the
// notification and its resolved recipients, no copies yet.
func (db *DB) schedule(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	write := func(q querier) (store.PublishResult, error) {
		ta := targetsOf(m.To)
		ids, emails, err := resolveTargets(ctx, q, ta)
		if err != nil {
			return store.PublishResult{}, err
		}
		var data sql.NullString
		if len(m.Data) > 0 {
			data = sql.NullString{String: string(m.Data), Valid: true}
		}
		var id int64
		err = q.GetContext(ctx, &id, `WITH n AS (
				INSERT INTO notifications (type, title, body, data, publisher, recipients, created_at, url, expires_at, deliver_at, required, owner)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id
			), s AS (
				INSERT INTO scheduled (notification_id, employee_id, due_at) SELECT n.id, e, $10 FROM n, unnest($13::bigint[]) AS e
			)
			SELECT id FROM n`,
			m.Type, m.Title, m.Body, data, m.Publisher, len(ids), now(), nullable(m.URL), millis(m.ExpiresAt), millis(m.DeliverAt),
			m.Required, m.Owner, pq.Int64Array(ids))
		if err != nil {
			return store.PublishResult{}, fmt.Errorf("schedule: %w", err)
		}
		return store.PublishResult{NotificationID: id, Recipients: len(ids), Unknown: ta.unknown(m.To, ids, emails), DeliverAt: millis(m.DeliverAt)}, nil
	}
	if idem != nil {
		return db.idempotent(ctx, "schedule", idem, func(tx *sqlx.Tx) (store.PublishResult, error) { return write(tx) })
	}
	var res store.PublishResult
	err := db.write(ctx, func(q querier) error {
		var err error
		res, err = write(q)
		return err
	})
	return res, wrap(ctx, "schedule", err)
}

// DeliverDue delivers scheduled notifications whose time has come. Each
// instance may run it: the notifications' rows are locked with SKIP
// LOCKED and their scheduled rows deleted in the same transaction, so
// exactly one instance delivers each.
func (db *DB) DeliverDue(ctx context.Context, limit int) (int, error) {
	n := 0
	err := db.tx(ctx, "deliver scheduled", func(tx *sqlx.Tx) error {
		t := now()
		var due []int64
		err := tx.SelectContext(ctx, &due, `SELECT id FROM notifications
			WHERE id IN (SELECT notification_id FROM scheduled WHERE due_at <= $1)
			ORDER BY deliver_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, t, limit)
		if err != nil {
			return err
		}
		for _, id := range due {
			if err := deliverScheduled(ctx, tx, id, t); err != nil {
				return err
			}
		}
		n = len(due)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// deliverScheduled turns the scheduled copies of notification id into
// inbox copies with their seqs, and notifies every instance.
func deliverScheduled(ctx context.Context, tx *sqlx.Tx, id int64, t time.Time) error {
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `DELETE FROM scheduled WHERE notification_id = $1 RETURNING employee_id`, id); err != nil {
		return err
	}
	var n struct {
		Type      string       `db:"type"`
		ExpiresAt sql.NullTime `db:"expires_at"`
		Required  bool         `db:"required"`
	}
	if err := tx.GetContext(ctx, &n, `SELECT type, expires_at, required FROM notifications WHERE id = $1`, id); err != nil {
		return err
	}
	if len(ids) == 0 || (n.ExpiresAt.Valid && !n.ExpiresAt.Time.After(t)) {
		return nil
	}
	var rs []struct {
		Employee int64 `db:"id"`
		Seq      int64 `db:"seq"`
		Muted    bool  `db:"muted"`
	}
	// Recipients' rows are locked in id order, as publishes lock them.
	err := tx.SelectContext(ctx, &rs, `WITH locked AS MATERIALIZED (
			SELECT id FROM employees WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE
		), bumped AS (
			UPDATE employees e SET last_seq = e.last_seq + 1 FROM locked WHERE e.id = locked.id RETURNING e.id, e.last_seq
		)
		SELECT b.id, b.last_seq AS seq,
			(NOT $3 AND coalesce(herald_muted(p.muted, $2), false)) AS muted
		FROM bumped b LEFT JOIN preferences p ON p.employee_id = b.id ORDER BY b.id`,
		pq.Int64Array(ids), n.Type, n.Required)
	if err != nil {
		return fmt.Errorf("assign seqs: %w", err)
	}
	emps, seqs, muted := make([]int64, len(rs)), make([]int64, len(rs)), make([]bool, len(rs))
	refs := ""
	live := 0
	for i, r := range rs {
		emps[i], seqs[i], muted[i] = r.Employee, r.Seq, r.Muted
		if !r.Muted {
			if live > 0 {
				refs += ","
			}
			refs += fmt.Sprintf("%d:%d", r.Employee, r.Seq)
			live++
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at, muted, read_at, seen_at)
		SELECT e, s, $4, $7, $5, m, CASE WHEN m THEN $6::timestamptz END, CASE WHEN m THEN $6::timestamptz END
		FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) AS t(e, s, m)`,
		pq.Int64Array(emps), pq.Int64Array(seqs), pq.BoolArray(muted), id, n.ExpiresAt, t, n.Type)
	if err != nil {
		return fmt.Errorf("store scheduled copies: %w", err)
	}
	if live == 0 {
		return nil
	}
	payload := fmt.Sprintf("%s%d", kindNotification, id)
	if live <= inlineRecipients {
		payload += " " + refs
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// sweepChunk bounds the rows one statement of Sweep deletes.
const sweepChunk = 2000

// Sweep deletes old and expired notifications and old idempotency keys,
// one chunk of each kind, in one statement (herald_sweep, migrations
// 00010 and 00011), which holds an advisory lock that keeps other instances' sweeps
// out (they return 0 meanwhile). Busy is the time the function spent
// deleting, measured inside PostgreSQL: the round trip and the commit are
// mostly waiting, and PostgreSQL's deletes do not hold publishes back (no
// single writer).
func (db *DB) Sweep(ctx context.Context, olderThan time.Time, limit int) (store.SweepChunk, error) {
	limit = min(max(limit, 1), sweepChunk)
	t := now()
	var old any
	if !olderThan.IsZero() {
		old = olderThan.UTC().Truncate(time.Millisecond)
	}
	var rs []struct {
		Swept  int64 `db:"swept"`
		BusyUS int64 `db:"busy_us"`
	}
	ctx, cancel := context.WithTimeout(ctx, db.opts.callTimeout)
	defer cancel()
	err := db.x.SelectContext(ctx, &rs, `SELECT swept, busy_us FROM herald_sweep($1, $2, $3, $4, $5)`,
		sweepLock, old, t, t.Add(-store.IdempotencyTTL), limit)
	if err != nil {
		return store.SweepChunk{}, wrap(ctx, "sweep", err)
	}
	if len(rs) == 0 { // another instance is sweeping
		return store.SweepChunk{}, nil
	}
	return store.SweepChunk{Rows: int(rs[0].Swept), Busy: time.Duration(rs[0].BusyUS) * time.Microsecond}, nil
}

func sortedDistinct(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// millis truncates t to the store's precision (as SQLite keeps it).
func millis(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

// Analyze vacuums the inbox tables and refreshes the planner's
// statistics, as autovacuum does as tables grow. After a bulk load (a
// benchmark, an import) the plans of inbox pages are only right once it
// has run: with the statistics of an empty table the planner sorts a whole
// inbox to show its first page. The vacuum also marks the pages all-visible
// (index-only scans need not read the table), and leaves autovacuum
// nothing to start in the middle of a benchmark.
func (db *DB) Analyze(ctx context.Context) error {
	_, err := db.x.ExecContext(ctx, `VACUUM (ANALYZE) inbox, notifications, employees, inbox_counts`)
	return wrap(ctx, "analyze", err)
}
