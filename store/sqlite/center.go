package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/corp/herald/store"
)

// The notification center's writes run in the writer's batches like
// publishes (writer.go): one write path, and state changes reach the sink
// in commit order with the deliveries.

// run submits fn as a write of the writer's next batch and returns the
// request once answered.
func (db *DB) run(ctx context.Context, op string, fn func(ctx context.Context, b *batch, r *request) error) (*request, error) {
	return db.runRequest(ctx, op, false, fn)
}

// runRequest is run; a mark (see request.mark) commits without waiting
// for the disk.
func (db *DB) runRequest(ctx context.Context, op string, mark bool, fn func(ctx context.Context, b *batch, r *request) error) (*request, error) {
	r := newRequest(kindFunc, store.Message{}, nil)
	r.mark = mark
	r.fn = func(ctx context.Context, b *batch, r *request) error { return wrap(op, fn(ctx, b, r)) }
	if err := db.submit(ctx, r); err != nil {
		return nil, wrap(op, err)
	}
	return r, r.err
}

// live is the SQL condition for a copy that has not expired at ?.
const live = `(expires_at IS NULL OR expires_at > ?)`

// stateSQL is each operation's statement, for one employee's selected
// copies (the selection is appended); each returns the seqs it changed.
// Reading an item also marks it seen: it was seen to be read.
var stateSQL = map[store.StateOp]string{
	store.OpRead:      `UPDATE inbox SET read_at = ?1, seen_at = coalesce(seen_at, ?1) WHERE read_at IS NULL`,
	store.OpUnread:    `UPDATE inbox SET read_at = NULL WHERE read_at IS NOT NULL`,
	store.OpSeen:      `UPDATE inbox SET seen_at = ?1 WHERE seen_at IS NULL`,
	store.OpArchive:   `UPDATE inbox SET archived_at = ?1, read_at = coalesce(read_at, ?1), seen_at = coalesce(seen_at, ?1) WHERE archived_at IS NULL`,
	store.OpUnarchive: `UPDATE inbox SET archived_at = NULL WHERE archived_at IS NOT NULL`,
	store.OpDelete:    `DELETE FROM inbox WHERE 1`,
}

// allSQL narrows "all" of an operation that changes few items of a large
// inbox (read, seen, unarchive) to the items its partial indexes hold: the
// unread (or unseen) items, and the archived ones (archived items are
// outside inbox_unread and inbox_unseen, and may be unread again). Without
// it "all" walks every item of the employee: 100,000 to mark 1,000 read.
var allSQL = map[store.StateOp]string{
	store.OpRead: ` AND seq IN (SELECT seq FROM inbox INDEXED BY inbox_unread WHERE employee_id = ?2 AND read_at IS NULL AND archived_at IS NULL
		UNION ALL SELECT seq FROM inbox INDEXED BY inbox_archived WHERE employee_id = ?2 AND archived_at IS NOT NULL AND read_at IS NULL)`,
	store.OpSeen: ` AND seq IN (SELECT seq FROM inbox INDEXED BY inbox_unseen WHERE employee_id = ?2 AND seen_at IS NULL AND archived_at IS NULL
		UNION ALL SELECT seq FROM inbox INDEXED BY inbox_archived WHERE employee_id = ?2 AND archived_at IS NOT NULL AND seen_at IS NULL)`,
	store.OpUnarchive: ` AND seq IN (SELECT seq FROM inbox INDEXED BY inbox_archived WHERE employee_id = ?2 AND archived_at IS NOT NULL)`,
}

// SetState applies op to seqs (or all) of the employee's inbox.
func (db *DB) SetState(ctx context.Context, employee int64, op store.StateOp, seqs []int64, all bool) (int, store.Counts, error) {
	base, ok := stateSQL[op]
	if !ok {
		return 0, store.Counts{}, fmt.Errorf("set state: unknown operation %q", op)
	}
	query := base + ` AND employee_id = ?2 AND (expires_at IS NULL OR expires_at > ?1)`
	if !all {
		query += ` AND seq IN (SELECT value FROM json_each(?3))`
	} else {
		query += allSQL[op]
	}
	query += ` RETURNING seq`
	if !all && len(seqs) == 0 {
		c, err := db.Counts(ctx, employee)
		return 0, c, err
	}
	js, _ := json.Marshal(seqs)
	r, err := db.runRequest(ctx, "set state", op != store.OpDelete, func(ctx context.Context, b *batch, r *request) error {
		now := store.Millis(time.Now())
		st, err := b.stmt(ctx, query)
		if err != nil {
			return err
		}
		var changed []int64
		args := []any{now, employee}
		if !all {
			args = append(args, string(js))
		}
		err = st.SelectContext(ctx, &changed, args...)
		if err != nil {
			return err
		}
		if r.counts, err = counts(ctx, b, employee, now); err != nil {
			return err
		}
		r.n = len(changed)
		if len(changed) > 0 {
			c := store.StateChange{Employee: employee, Op: op, All: all, Counts: r.counts}
			if !all {
				c.Seqs = sortedDistinct(changed)
			}
			r.states = append(r.states, c)
		}
		return nil
	})
	if err != nil {
		return 0, store.Counts{}, err
	}
	return r.n, r.counts, nil
}

// countsSQL reads both counts from inbox_counts (kept by triggers,
// migration 00005), less the expired copies still stored, found through
// inbox_expiring: the same at 100,000 unread items as at 10 (counting
// the partial indexes took milliseconds at that size).
const countsSQL = `SELECT
	coalesce((SELECT unread FROM inbox_counts WHERE employee_id = ?1), 0)
		- (SELECT count(*) FROM inbox INDEXED BY inbox_expiring WHERE employee_id = ?1 AND expires_at <= ?2 AND read_at IS NULL AND archived_at IS NULL),
	coalesce((SELECT unseen FROM inbox_counts WHERE employee_id = ?1), 0)
		- (SELECT count(*) FROM inbox INDEXED BY inbox_expiring WHERE employee_id = ?1 AND expires_at <= ?2 AND seen_at IS NULL AND archived_at IS NULL)`

func counts(ctx context.Context, q stmter, employee, now int64) (store.Counts, error) {
	var c store.Counts
	st, err := q.stmt(ctx, countsSQL)
	if err == nil {
		err = st.QueryRowxContext(ctx, employee, now).Scan(&c.Unread, &c.Unseen)
	}
	if err != nil {
		return c, fmt.Errorf("count: %w", err)
	}
	return c, nil
}

// Counts returns the employee's unread and unseen counts.
func (db *DB) Counts(ctx context.Context, employee int64) (store.Counts, error) {
	c, err := counts(ctx, pool{db}, employee, store.Millis(time.Now()))
	return c, wrap("counts", err)
}

// Preferences returns the employee's preferences.
func (db *DB) Preferences(ctx context.Context, employee int64) (store.Preferences, error) {
	var row struct {
		Muted string `db:"muted"`
		Push  bool   `db:"push"`
	}
	err := db.x.GetContext(ctx, &row, `SELECT muted, push FROM preferences WHERE employee_id = ?`, employee)
	if err := noRows(err); err == store.ErrNotFound {
		return store.DefaultPreferences(), nil
	} else if err != nil {
		return store.Preferences{}, wrap("read preferences", err)
	}
	p := store.Preferences{Push: row.Push, Muted: []string{}}
	if err := json.Unmarshal([]byte(row.Muted), &p.Muted); err != nil {
		return store.Preferences{}, wrap("read preferences", err)
	}
	return p, nil
}

// SetPreferences replaces the employee's preferences.
func (db *DB) SetPreferences(ctx context.Context, employee int64, p store.Preferences) error {
	if p.Muted == nil {
		p.Muted = []string{}
	}
	js, _ := json.Marshal(p.Muted)
	_, err := db.run(ctx, "save preferences", func(ctx context.Context, b *batch, r *request) error {
		return b.exec(ctx, `INSERT INTO preferences (employee_id, muted, push, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (employee_id) DO UPDATE SET muted = excluded.muted, push = excluded.push, updated_at = excluded.updated_at`,
			employee, string(js), boolInt(p.Push), store.Millis(time.Now()))
	})
	return err
}

// Withdraw removes every copy of notification id published by owner.
func (db *DB) Withdraw(ctx context.Context, owner string, id int64) error {
	_, err := db.run(ctx, "withdraw", func(ctx context.Context, b *batch, r *request) error {
		var one int
		st, err := b.stmt(ctx, `SELECT 1 FROM notifications WHERE id = ? AND owner = ? AND owner <> ''`)
		if err == nil {
			err = st.GetContext(ctx, &one, id, owner)
		}
		if err != nil {
			return noRows(err)
		}
		var gone []struct {
			Employee int64 `db:"employee_id"`
			Seq      int64 `db:"seq"`
		}
		st, err = b.stmt(ctx, `DELETE FROM inbox WHERE notification_id = ? RETURNING employee_id, seq`)
		if err == nil {
			err = st.SelectContext(ctx, &gone, id)
		}
		if err != nil {
			return err
		}
		// The notification row goes too, and with it any scheduled copies.
		if err := b.exec(ctx, `DELETE FROM notifications WHERE id = ?`, id); err != nil {
			return err
		}
		now := store.Millis(time.Now())
		for _, g := range gone {
			c, err := counts(ctx, b, g.Employee, now)
			if err != nil {
				return err
			}
			r.states = append(r.states, store.StateChange{Employee: g.Employee, Op: store.OpDelete, Seqs: []int64{g.Seq}, Counts: c})
		}
		return nil
	})
	return err
}

// muted returns those of ids who muted typ.
func muted(ctx context.Context, q stmter, ids []int64, typ string) (map[int64]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	js, _ := json.Marshal(ids)
	st, err := q.stmt(ctx, `SELECT p.employee_id FROM preferences p
		WHERE p.employee_id IN (SELECT value FROM json_each(?1)) AND p.muted <> '[]'
		AND EXISTS (SELECT 1 FROM json_each(p.muted) m WHERE m.value = ?2
			OR (m.value LIKE '%*' AND substr(?2, 1, length(m.value) - 1) = substr(m.value, 1, length(m.value) - 1)))`)
	if err != nil {
		return nil, fmt.Errorf("read mutes: %w", err)
	}
	var found []int64
	if err := st.SelectContext(ctx, &found, string(js), typ); err != nil {
		return nil, fmt.Errorf("read mutes: %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	set := make(map[int64]bool, len(found))
	for _, id := range found {
		set[id] = true
	}
	return set, nil
}

// DeliverDue delivers scheduled notifications whose time has come. A read
// first tells whether anything is due, so that the frequent checks cost the
// writer nothing when nothing is.
func (db *DB) DeliverDue(ctx context.Context, limit int) (int, error) {
	var due int
	st, err := db.prepared(ctx, db.x, `SELECT count(*) FROM (SELECT 1 FROM scheduled WHERE due_at <= ? LIMIT 1)`)
	if err == nil {
		err = st.GetContext(ctx, &due, store.Millis(time.Now()))
	}
	if err != nil || due == 0 {
		return 0, wrap("deliver scheduled", err)
	}
	r, err := db.run(ctx, "deliver scheduled", func(ctx context.Context, b *batch, r *request) error {
		now := time.Now().UTC().Truncate(time.Millisecond)
		var due []int64
		st, err := b.stmt(ctx, `SELECT notification_id FROM scheduled WHERE due_at <= ? GROUP BY notification_id ORDER BY min(due_at), notification_id LIMIT ?`)
		if err == nil {
			err = st.SelectContext(ctx, &due, store.Millis(now), limit)
		}
		if err != nil {
			return err
		}
		for _, id := range due {
			d, err := deliverScheduled(ctx, b, id, now)
			if err != nil {
				return err
			}
			r.deliveries = append(r.deliveries, d)
		}
		r.n = len(due)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.n, nil
}

// deliverScheduled turns the scheduled copies of notification id into
// inbox copies.
func deliverScheduled(ctx context.Context, b *batch, id int64, now time.Time) (store.Delivery, error) {
	var row notificationRow
	st, err := b.stmt(ctx, `SELECT `+notificationCols+`, required FROM notifications WHERE id = ?`)
	if err == nil {
		err = st.GetContext(ctx, &row, id)
	}
	if err != nil {
		return store.Delivery{}, fmt.Errorf("read scheduled notification %d: %w", id, err)
	}
	var ids []int64
	st, err = b.stmt(ctx, `DELETE FROM scheduled WHERE notification_id = ? RETURNING employee_id`)
	if err == nil {
		err = st.SelectContext(ctx, &ids, id)
	}
	if err != nil {
		return store.Delivery{}, fmt.Errorf("take scheduled copies of %d: %w", id, err)
	}
	n := row.notification()
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		return store.Delivery{}, nil // expired before its time came: nobody gets it
	}
	sortInts(ids)
	var mutedSet map[int64]bool
	if !row.Required {
		if mutedSet, err = muted(ctx, b, ids, n.Type); err != nil {
			return store.Delivery{}, err
		}
	}
	rs, err := storeCopies(ctx, b, n, ids, mutedSet, now)
	if err != nil {
		return store.Delivery{}, err
	}
	return store.Delivery{Notification: n, Recipients: rs}, nil
}

// sweepChunk bounds the rows one statement of Sweep deletes, so a sweep
// holds the writer for a few milliseconds at a time.
const sweepChunk = 500

// Sweep deletes old and expired notifications and old idempotency keys,
// one chunk of each kind, in one write of the writer. A scheduled
// notification's age counts from its deliver_at, when its copies appeared.
func (db *DB) Sweep(ctx context.Context, olderThan time.Time, limit int) (store.SweepChunk, error) {
	limit = min(max(limit, 1), sweepChunk)
	var busy time.Duration
	r, err := db.run(ctx, "sweep", func(ctx context.Context, b *batch, r *request) error {
		start := time.Now()
		defer func() { busy = time.Since(start) }()
		now := store.Millis(time.Now())
		old := int64(-1 << 62)
		if !olderThan.IsZero() {
			old = store.Millis(olderThan)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM inbox WHERE (employee_id, seq) IN (
				SELECT employee_id, seq FROM inbox WHERE expires_at <= ? LIMIT ?)`, []any{now, limit}},
			{`DELETE FROM inbox WHERE (employee_id, seq) IN (
				SELECT i.employee_id, i.seq FROM notifications n JOIN inbox i ON i.notification_id = n.id
				WHERE n.created_at < ?1 AND coalesce(n.deliver_at, n.created_at) < ?1 LIMIT ?2)`, []any{old, limit}},
			{`DELETE FROM notifications WHERE id IN (
				SELECT n.id FROM notifications n WHERE n.created_at < ?1 AND coalesce(n.deliver_at, n.created_at) < ?1
				AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notification_id = n.id)
				AND NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.notification_id = n.id) LIMIT ?2)`, []any{old, limit}},
			{`DELETE FROM notifications WHERE id IN (
				SELECT n.id FROM notifications n WHERE n.expires_at <= ?
				AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notification_id = n.id)
				AND NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.notification_id = n.id) LIMIT ?)`, []any{now, limit}},
			{`DELETE FROM idempotency_keys WHERE (owner, key) IN (
				SELECT owner, key FROM idempotency_keys WHERE created_at <= ? LIMIT ?)`,
				[]any{store.Millis(time.Now().Add(-store.IdempotencyTTL)), limit}},
		} {
			st, err := b.stmt(ctx, q.sql)
			if err != nil {
				return err
			}
			res, err := st.ExecContext(ctx, q.args...)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			r.n += int(n)
		}
		return nil
	})
	if err != nil {
		return store.SweepChunk{}, err
	}
	return store.SweepChunk{Rows: r.n, Busy: busy}, nil
}
