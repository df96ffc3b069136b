package sqlite

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
)

// Publish stores one inbox row per recipient and hands the delivery to the
// sink once committed. It runs in the writer's next batch (writer.go): seqs
// come from employees.last_seq, bumped in the batch's transaction, and one
// goroutine writes and delivers every batch, so seq order is commit order.
func (db *DB) Publish(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	r := newRequest(kindPublish, m, idem)
	if err := db.submit(ctx, r); err != nil {
		return store.PublishResult{}, wrap("publish", err)
	}
	return r.res, r.err
}

// PublishEphemeral resolves m's targets and hands m to the sink unstored.
// Only a publish with an Idempotency-Key writes (the key and its answer),
// and only that one waits for the writer; the others read the directory
// and return, whatever the writer is doing.
func (db *DB) PublishEphemeral(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	if idem != nil {
		r := newRequest(kindEphemeral, m, idem)
		if err := db.submit(ctx, r); err != nil {
			return store.PublishResult{}, wrap("publish ephemeral", err)
		}
		return r.res, r.err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if ids, ok := db.onlineTargets(m.To); ok {
		db.sink.Load().DeliverEphemeral(store.EphemeralFor(m, ids, now))
		return store.PublishResult{Recipients: len(ids)}, nil
	}
	ids, res, err := db.resolveResult(ctx, pool{db}, m.To)
	if err != nil {
		return store.PublishResult{}, wrap("publish ephemeral", err)
	}
	if s := db.sink.Load(); s != nil {
		s.DeliverEphemeral(store.EphemeralFor(m, ids, now))
	}
	return res, nil
}

// onlineTargets returns t's employees, sorted and distinct, when t names
// employees only and each has an open stream here: then the directory need
// not be read, since an employee with an open stream exists. A stream opens
// only for an employee the directory has, and a delete ends the employee's
// streams before it completes, so the answer is the one the directory
// would have given when no delete was under way (deletes is even). Most
// ephemeral messages go to someone who is online (typing indicators,
// presence, live progress); reading the directory was most of their cost.
// A delete run by another process (the CLI beside a running server) is not
// seen: its employee's open streams keep receiving until they reconnect, as
// they do for ephemeral messages to roles and everyone.
func (db *DB) onlineTargets(t store.Targets) ([]int64, bool) {
	if len(t.Employees) == 0 || len(t.Emails) > 0 || len(t.Roles) > 0 || t.All {
		return nil, false
	}
	s := db.sink.Load()
	if s == nil || db.deletes.Load()%2 == 1 {
		return nil, false
	}
	ids := slices.Clone(t.Employees)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(s.Connected(ids)) != len(ids) {
		return nil, false
	}
	return ids, true
}

// write runs r's statements inside the writer's batch b. Failures of the
// database are marked store.ErrUnavailable; r's answer and what the sink
// gets once the batch commits are left in r.
func (db *DB) write(ctx context.Context, b *batch, r *request) error {
	switch r.kind {
	case kindProbe:
		return wrap("ping", b.exec(ctx, `PRAGMA user_version = 0`))
	case kindEphemeral:
		return wrap("publish ephemeral", db.writeEphemeral(ctx, b, r))
	case kindFunc:
		return r.fn(ctx, b, r)
	default:
		return wrap("publish", db.writePublish(ctx, b, r))
	}
}

// writePublish stores the notification r publishes: the notification row,
// a bumped seq and an inbox row per recipient, and the Idempotency-Key's
// answer.
func (db *DB) writePublish(ctx context.Context, b *batch, r *request) error {
	m, idem := r.m, r.idem
	if idem != nil {
		res, found, err := lookupIdempotency(ctx, b, idem)
		if err != nil || found {
			r.res = res
			return err
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	scheduled := m.DeliverAt != nil && m.DeliverAt.After(now)
	var (
		ids      []int64 // scheduled: who gets a copy at delivery
		everyone bool    // copies are every employee
		copies   []store.Recipient
		mutes    map[int64]bool
		unknown  store.Unknown
		err      error
	)
	switch t := m.To; {
	case !scheduled && len(t.Emails) == 0 && len(t.Roles) == 0 && !t.All:
		// Employees by ID only: the seq bump finds which of them exist, so
		// the directory is not read first.
		given := slices.Clone(t.Employees)
		slices.Sort(given)
		if copies, mutes, err = bumpSeqs(ctx, b, slices.Compact(given), false, m.Type, m.Required); err != nil {
			return err
		}
		known := make(map[int64]bool, len(copies))
		for _, c := range copies {
			known[c.Employee] = true
		}
		unknown.Employees = store.MissingIDs(t.Employees, known)
	case !scheduled && t.All && len(t.Employees) == 0 && len(t.Emails) == 0:
		// Everyone (roles add nobody, and no ID or email can be unknown):
		// the seq bump finds them.
		everyone = true
		if copies, mutes, err = bumpSeqs(ctx, b, nil, true, m.Type, m.Required); err != nil {
			return err
		}
	default:
		if ids, unknown, err = db.resolve(ctx, b, t); err != nil {
			return fmt.Errorf("resolve targets: %w", err)
		}
		if !scheduled {
			if copies, mutes, err = bumpSeqs(ctx, b, ids, false, m.Type, m.Required); err != nil {
				return err
			}
		}
	}
	recipientCount := len(copies)
	if scheduled {
		recipientCount = len(ids)
	}
	n := store.Notification{Type: m.Type, Title: m.Title, Body: m.Body, Data: m.Data, CreatedAt: now, URL: m.URL, ExpiresAt: m.ExpiresAt}
	var data, url, expires, deliverAt any
	if len(m.Data) > 0 {
		data = string(m.Data)
	}
	if m.URL != "" {
		url = m.URL
	}
	if m.ExpiresAt != nil {
		expires = store.Millis(*m.ExpiresAt)
	}
	if scheduled {
		deliverAt = store.Millis(*m.DeliverAt)
	}
	insert, err := b.stmt(ctx, `INSERT INTO notifications (type, title, body, data, publisher, recipients, created_at, url, expires_at, deliver_at, required, owner)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	if err == nil {
		err = insert.QueryRowContext(ctx, m.Type, m.Title, m.Body, data, m.Publisher, recipientCount, store.Millis(now),
			url, expires, deliverAt, boolInt(m.Required), m.Owner).Scan(&n.ID)
	}
	if err != nil {
		return fmt.Errorf("insert notification: %w", err)
	}
	var recipients []store.Recipient
	if scheduled {
		err = b.exec(ctx, `INSERT INTO scheduled (notification_id, employee_id, due_at)
			SELECT ?, value, ? FROM json_each(?)`, n.ID, deliverAt, int64sJSON(ids))
		if err != nil {
			return fmt.Errorf("schedule %d copies: %w", len(ids), err)
		}
	} else if recipients, err = insertCopies(ctx, b, n, copies, everyone, mutes, now); err != nil {
		return err
	}
	res := store.PublishResult{NotificationID: n.ID, Recipients: recipientCount, Unknown: unknown}
	if scheduled {
		res.DeliverAt = m.DeliverAt
	}
	if idem != nil {
		if err := saveIdempotency(ctx, b, idem, res, now); err != nil {
			return err
		}
	}
	r.res = res
	r.delivery = store.Delivery{Notification: n, Recipients: recipients}
	return nil
}

// mutedBy is true for the employee a row of employees names when the
// notification type ?2 is muted in their preferences and the notification
// is not required (?3 = 0): the same test as muted's, for one row.
const mutedBy = `(?3 = 0 AND EXISTS (SELECT 1 FROM preferences p
		WHERE p.employee_id = employees.id AND p.muted <> '[]'
		AND EXISTS (SELECT 1 FROM json_each(p.muted) m WHERE m.value = ?2
			OR (m.value LIKE '%*' AND substr(?2, 1, length(m.value) - 1) = substr(m.value, 1, length(m.value) - 1)))))`

// bumpSeqs bumps the seq of each of ids (sorted, distinct) that names an
// employee, or of every employee when all is set, and returns them, by
// employee ID, with their new seqs; with them, in the same statement, those
// who muted typ (none when required). IDs that name nobody are left out.
func bumpSeqs(ctx context.Context, b *batch, ids []int64, all bool, typ string, required bool) ([]store.Recipient, map[int64]bool, error) {
	var query string
	var arg any
	switch {
	case all:
		query, arg = `UPDATE employees SET last_seq = last_seq + 1 WHERE ?1 = 1 RETURNING id, last_seq, `+mutedBy, 1
	case len(ids) == 0:
		return nil, nil, nil
	case len(ids) == 1:
		query, arg = `UPDATE employees SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING id, last_seq, `+mutedBy, ids[0]
	default:
		query, arg = `UPDATE employees SET last_seq = last_seq + 1
			WHERE id IN (SELECT value FROM json_each(?1)) RETURNING id, last_seq, `+mutedBy, int64sJSON(ids)
	}
	bump, err := b.stmt(ctx, query)
	if err != nil {
		return nil, nil, fmt.Errorf("assign seqs: %w", err)
	}
	rows, err := bump.QueryContext(ctx, arg, typ, boolInt(required))
	if err != nil {
		return nil, nil, fmt.Errorf("assign seqs: %w", err)
	}
	defer rows.Close()
	copies := make([]store.Recipient, 0, max(len(ids), 1))
	var mutes map[int64]bool
	for rows.Next() {
		var c store.Recipient
		var muted bool
		if err := rows.Scan(&c.Employee, &c.Seq, &muted); err != nil {
			return nil, nil, fmt.Errorf("assign seqs: %w", err)
		}
		copies = append(copies, c)
		if muted {
			if mutes == nil {
				mutes = make(map[int64]bool)
			}
			mutes[c.Employee] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("assign seqs: %w", err)
	}
	slices.SortFunc(copies, func(a, b store.Recipient) int { return cmp.Compare(a.Employee, b.Employee) })
	return copies, mutes, nil
}

// storeCopies bumps the seq of each of ids and stores their inbox rows of
// notification n; the copies of muted employees (mutedSet) are stored read
// and seen. It returns the recipients to deliver to live (the others), by
// employee ID.
func storeCopies(ctx context.Context, b *batch, n store.Notification, ids []int64, mutedSet map[int64]bool, now time.Time) ([]store.Recipient, error) {
	copies, _, err := bumpSeqs(ctx, b, ids, false, "", true)
	if err != nil {
		return nil, err
	}
	return insertCopies(ctx, b, n, copies, false, mutedSet, now)
}

// insertCopies stores the inbox rows of notification n, one per copy at
// the seq bumpSeqs gave it (all: copies are every employee), each with the
// notification's type (for the type filters, migration 00006); the copies
// of muted employees are stored read and seen. It returns the recipients
// to deliver to live (the others).
func insertCopies(ctx context.Context, b *batch, n store.Notification, copies []store.Recipient, all bool, mutedSet map[int64]bool, now time.Time) ([]store.Recipient, error) {
	if len(copies) == 0 {
		return nil, nil
	}
	var expires any
	if n.ExpiresAt != nil {
		expires = store.Millis(*n.ExpiresAt)
	}
	var err error
	switch {
	case len(copies) == 1:
		c := copies[0]
		var readAt any
		if mutedSet[c.Employee] {
			readAt = store.Millis(now)
		}
		err = b.exec(ctx, `INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at, muted, read_at, seen_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6 IS NOT NULL, ?6, ?6)`, c.Employee, c.Seq, n.ID, n.Type, expires, readAt)
	case all:
		err = b.exec(ctx, `INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at)
			SELECT id, last_seq, ?, ?, ? FROM employees`, n.ID, n.Type, expires)
	default:
		ids := make([]int64, len(copies))
		for i, c := range copies {
			ids[i] = c.Employee
		}
		err = b.exec(ctx, `INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at)
			SELECT id, last_seq, ?, ?, ? FROM employees WHERE id IN (SELECT value FROM json_each(?))`, n.ID, n.Type, expires, int64sJSON(ids))
	}
	if err == nil && len(copies) > 1 && len(mutedSet) > 0 {
		quiet := make([]int64, 0, len(mutedSet))
		for e := range mutedSet {
			quiet = append(quiet, e)
		}
		err = b.exec(ctx, `UPDATE inbox SET muted = 1, read_at = ?, seen_at = ?
			WHERE notification_id = ? AND employee_id IN (SELECT value FROM json_each(?))`,
			store.Millis(now), store.Millis(now), n.ID, int64sJSON(quiet))
	}
	if err != nil {
		return nil, fmt.Errorf("publish to %d recipients: %w", len(copies), err)
	}
	if len(mutedSet) == 0 {
		return copies, nil
	}
	live := make([]store.Recipient, 0, len(copies))
	for _, c := range copies {
		if !mutedSet[c.Employee] {
			live = append(live, c)
		}
	}
	return live, nil
}

func int64sJSON(ids []int64) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// writeEphemeral resolves an ephemeral publish with an Idempotency-Key and
// stores the key's answer; the message itself goes to the sink only.
func (db *DB) writeEphemeral(ctx context.Context, b *batch, r *request) error {
	saved, found, err := lookupIdempotency(ctx, b, r.idem)
	if err != nil || found {
		r.res = saved
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ids, res, err := db.resolveResult(ctx, b, r.m.To)
	if err != nil {
		return err
	}
	if err := saveIdempotency(ctx, b, r.idem, res, now); err != nil {
		return err
	}
	e := store.EphemeralFor(r.m, ids, now)
	r.res, r.ephemeral = res, &e
	return nil
}

// stmter hands out prepared statements: the pool's (pool) or bound to a
// writer's transaction (*batch).
type stmter interface {
	stmt(ctx context.Context, query string) (*sqlx.Stmt, error)
}

// pool prepares statements on the connection pool, for reads outside the
// writer.
type pool struct{ db *DB }

func (p pool) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	return p.db.prepared(ctx, p.db.x, query)
}

func (db *DB) resolveResult(ctx context.Context, q stmter, t store.Targets) ([]int64, store.PublishResult, error) {
	ids, unknown, err := db.resolve(ctx, q, t)
	if err != nil {
		return nil, store.PublishResult{}, fmt.Errorf("resolve targets: %w", err)
	}
	return ids, store.PublishResult{Recipients: len(ids), Unknown: unknown}, nil
}

// resolve expands targets to the sorted, distinct IDs of existing employees
// and lists the employee IDs and emails that matched nobody.
func (db *DB) resolve(ctx context.Context, q stmter, t store.Targets) ([]int64, store.Unknown, error) {
	set := make(map[int64]bool)
	var unknown store.Unknown
	add := func(query string, arg any) ([]int64, error) {
		st, err := q.stmt(ctx, query)
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
		st, err := q.stmt(ctx, `SELECT id, email FROM employees WHERE email IN (SELECT value FROM json_each(?))`)
		if err == nil {
			err = st.SelectContext(ctx, &rows, string(js))
		}
		if err != nil {
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
func lookupIdempotency(ctx context.Context, q stmter, idem *store.Idempotency) (store.PublishResult, bool, error) {
	var row struct {
		Hash   string `db:"request_hash"`
		Result string `db:"result"`
	}
	cutoff := store.Millis(time.Now().Add(-store.IdempotencyTTL))
	st, err := q.stmt(ctx, `SELECT request_hash, result FROM idempotency_keys WHERE owner = ? AND key = ? AND created_at > ?`)
	if err == nil {
		err = st.GetContext(ctx, &row, idem.Owner, idem.Key, cutoff)
	}
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

// Replay returns the saved answer of idem's key and writes nothing.
func (db *DB) Replay(ctx context.Context, idem store.Idempotency) (store.PublishResult, error) {
	res, found, err := lookupIdempotency(ctx, readStmts{db}, &idem)
	if err == nil && !found {
		err = store.ErrNotFound
	}
	return res, wrap("replay", err)
}

// readStmts prepares statements on the pool of readers (lookupIdempotency
// outside the writer).
type readStmts struct{ db *DB }

func (r readStmts) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	return r.db.prepared(ctx, r.db.x, query)
}

// saveIdempotency records the answer for idem and drops expired keys.
func saveIdempotency(ctx context.Context, b *batch, idem *store.Idempotency, res store.PublishResult, now time.Time) error {
	if err := b.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at <= ?`, store.Millis(now.Add(-store.IdempotencyTTL))); err != nil {
		return err
	}
	return b.exec(ctx, `INSERT INTO idempotency_keys (owner, key, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?)`,
		idem.Owner, idem.Key, idem.Hash, store.EncodeResult(res), store.Millis(now))
}
