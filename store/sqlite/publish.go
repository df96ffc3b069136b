package sqlite

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/corp/herald/store"
)

// Publish stores one inbox row per recipient and hands the delivery to the
// sink once committed. Seqs come from employees.last_seq, bumped in the same
// transaction; writes are serialized, so seq order is commit order.
func (db *DB) Publish(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()

	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return store.PublishResult{}, wrap("publish", err)
	}
	defer tx.Rollback()

	if idem != nil {
		if res, found, err := lookupIdempotency(ctx, tx, idem); err != nil || found {
			return res, wrap("publish", err)
		}
	}
	ids, unknown, err := db.resolve(ctx, tx, m.To)
	if err != nil {
		return store.PublishResult{}, wrap("publish: resolve targets", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := store.Notification{Type: m.Type, Title: m.Title, Body: m.Body, Data: m.Data, CreatedAt: now}
	var data any
	if len(m.Data) > 0 {
		data = string(m.Data)
	}
	insert, err := db.prepared(ctx, tx, `INSERT INTO notifications (type, title, body, data, publisher, recipients, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	if err == nil {
		err = insert.GetContext(ctx, &n.ID, m.Type, m.Title, m.Body, data, m.Publisher, len(ids), store.Millis(now))
	}
	if err != nil {
		return store.PublishResult{}, wrap("publish: insert notification", err)
	}

	recipients := make([]store.Recipient, 0, len(ids))
	if len(ids) > 0 {
		idsJSON, _ := json.Marshal(ids)
		bump, err := db.prepared(ctx, tx, `UPDATE employees SET last_seq = last_seq + 1
			WHERE id IN (SELECT value FROM json_each(?)) RETURNING id, last_seq`)
		if err != nil {
			return store.PublishResult{}, wrap("publish: assign seqs", err)
		}
		rows, err := bump.QueryxContext(ctx, string(idsJSON))
		if err != nil {
			return store.PublishResult{}, wrap("publish: assign seqs", err)
		}
		for rows.Next() {
			var r store.Recipient
			if err := rows.Scan(&r.Employee, &r.Seq); err != nil {
				rows.Close()
				return store.PublishResult{}, wrap("publish: assign seqs", err)
			}
			recipients = append(recipients, r)
		}
		if err := rows.Close(); err != nil {
			return store.PublishResult{}, wrap("publish: assign seqs", err)
		}
		copies, err := db.prepared(ctx, tx, `INSERT INTO inbox (employee_id, seq, notification_id)
			SELECT id, last_seq, ? FROM employees WHERE id IN (SELECT value FROM json_each(?))`)
		if err == nil {
			_, err = copies.ExecContext(ctx, n.ID, string(idsJSON))
		}
		if err != nil {
			return store.PublishResult{}, wrap(fmt.Sprintf("publish to %d recipients", len(ids)), err)
		}
		slices.SortFunc(recipients, func(a, b store.Recipient) int { return cmp.Compare(a.Employee, b.Employee) })
	}

	res := store.PublishResult{NotificationID: n.ID, Recipients: len(ids), Unknown: unknown}
	if idem != nil {
		if err := saveIdempotency(ctx, tx, idem, res, now); err != nil {
			return store.PublishResult{}, wrap("publish", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return store.PublishResult{}, wrap("publish: commit", err)
	}
	if len(recipients) > 0 {
		db.deliver(store.Delivery{Notification: n, Recipients: recipients})
	}
	return res, nil
}

// PublishEphemeral resolves m's targets and hands m to the sink unstored.
// Only a publish with an Idempotency-Key writes (the key and its answer).
func (db *DB) PublishEphemeral(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var (
		ids []int64
		res store.PublishResult
		err error
	)
	if idem == nil {
		ids, res, err = db.resolveResult(ctx, db.x, m.To)
		if err != nil {
			return store.PublishResult{}, wrap("publish ephemeral", err)
		}
	} else {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
		tx, err := db.x.BeginTxx(ctx, nil)
		if err != nil {
			return store.PublishResult{}, wrap("publish ephemeral", err)
		}
		defer tx.Rollback()
		if saved, found, err := lookupIdempotency(ctx, tx, idem); err != nil || found {
			return saved, wrap("publish ephemeral", err)
		}
		if ids, res, err = db.resolveResult(ctx, tx, m.To); err != nil {
			return store.PublishResult{}, wrap("publish ephemeral", err)
		}
		if err := saveIdempotency(ctx, tx, idem, res, now); err != nil {
			return store.PublishResult{}, wrap("publish ephemeral", err)
		}
		if err := tx.Commit(); err != nil {
			return store.PublishResult{}, wrap("publish ephemeral: commit", err)
		}
	}
	if s := db.sink.Load(); s != nil {
		s.DeliverEphemeral(store.EphemeralFor(m, ids, now))
	}
	return res, nil
}

func (db *DB) resolveResult(ctx context.Context, q querier, t store.Targets) ([]int64, store.PublishResult, error) {
	ids, unknown, err := db.resolve(ctx, q, t)
	if err != nil {
		return nil, store.PublishResult{}, fmt.Errorf("resolve targets: %w", err)
	}
	return ids, store.PublishResult{Recipients: len(ids), Unknown: unknown}, nil
}

// resolve expands targets to the sorted, distinct IDs of existing employees
// and lists the employee IDs and emails that matched nobody.
func (db *DB) resolve(ctx context.Context, q querier, t store.Targets) ([]int64, store.Unknown, error) {
	set := make(map[int64]bool)
	var unknown store.Unknown
	add := func(query string, arg any) ([]int64, error) {
		st, err := db.prepared(ctx, q, query)
		if err != nil {
			return nil, err
		}
		var ids []int64
		if err := st.SelectContext(ctx, &ids, arg); err != nil {
			return nil, err
		}
		for _, id := range ids {
			set[id] = true
		}
		return ids, nil
	}
	if t.All {
		if _, err := add(`SELECT id FROM employees WHERE ? = 1`, 1); err != nil {
			return nil, unknown, err
		}
	}
	if len(t.Employees) > 0 {
		js, _ := json.Marshal(t.Employees)
		found, err := add(`SELECT id FROM employees WHERE id IN (SELECT value FROM json_each(?))`, string(js))
		if err != nil {
			return nil, unknown, err
		}
		known := make(map[int64]bool, len(found))
		for _, id := range found {
			known[id] = true
		}
		unknown.Employees = store.MissingIDs(t.Employees, known)
	}
	if len(t.Emails) > 0 {
		norm := make([]string, len(t.Emails))
		for i, e := range t.Emails {
			norm[i] = store.NormalizeLogin(e)
		}
		js, _ := json.Marshal(norm)
		var rows []struct {
			ID    int64  `db:"id"`
			Email string `db:"email"`
		}
		if err := q.SelectContext(ctx, &rows, `SELECT id, email FROM employees WHERE email IN (SELECT value FROM json_each(?))`, string(js)); err != nil {
			return nil, unknown, err
		}
		known := make(map[string]bool, len(rows))
		for _, r := range rows {
			set[r.ID] = true
			known[r.Email] = true
		}
		unknown.Emails = store.MissingEmails(t.Emails, known)
	}
	if len(t.Roles) > 0 {
		js, _ := json.Marshal(t.Roles)
		if _, err := add(`SELECT DISTINCT employee_id FROM employee_roles WHERE role IN (SELECT value FROM json_each(?))`, string(js)); err != nil {
			return nil, unknown, err
		}
	}
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, unknown, nil
}

// lookupIdempotency returns the saved answer for idem, if there is one
// younger than store.IdempotencyTTL.
func lookupIdempotency(ctx context.Context, q querier, idem *store.Idempotency) (store.PublishResult, bool, error) {
	var row struct {
		Hash   string `db:"request_hash"`
		Result string `db:"result"`
	}
	cutoff := store.Millis(time.Now().Add(-store.IdempotencyTTL))
	err := q.GetContext(ctx, &row, `SELECT request_hash, result FROM idempotency_keys WHERE owner = ? AND key = ? AND created_at > ?`,
		idem.Owner, idem.Key, cutoff)
	if err := noRows(err); err == store.ErrNotFound {
		return store.PublishResult{}, false, nil
	} else if err != nil {
		return store.PublishResult{}, false, err
	}
	if row.Hash != idem.Hash {
		return store.PublishResult{}, true, store.ErrIdempotencyMismatch
	}
	res, err := store.DecodeResult(row.Result)
	return res, true, err
}

// saveIdempotency records the answer for idem and drops expired keys.
func saveIdempotency(ctx context.Context, q querier, idem *store.Idempotency, res store.PublishResult, now time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at <= ?`, store.Millis(now.Add(-store.IdempotencyTTL))); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO idempotency_keys (owner, key, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?)`,
		idem.Owner, idem.Key, idem.Hash, store.EncodeResult(res), store.Millis(now))
	return err
}
