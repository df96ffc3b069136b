package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
)

// Web Push. Every write takes writeMu, like the other writes beside the
// publish writer, so the queue's claims are serialized: one claim at a time
// is what SQLite's single writer gives for free.

type pushSubRow struct {
	ID        int64  `db:"id"`
	Employee  int64  `db:"employee_id"`
	Endpoint  string `db:"endpoint"`
	P256DH    []byte `db:"p256dh"`
	Auth      []byte `db:"auth"`
	CreatedAt int64  `db:"created_at"`
}

func (r pushSubRow) subscription() store.PushSubscription {
	return store.PushSubscription{
		ID: r.ID, Employee: r.Employee, Endpoint: r.Endpoint, P256DH: r.P256DH, Auth: r.Auth,
		CreatedAt: store.FromMillis(r.CreatedAt),
	}
}

// SavePushSubscription stores a subscription, replacing the keys of a known
// endpoint, and keeps the employee's newest max.
func (db *DB) SavePushSubscription(ctx context.Context, s store.PushSubscription, max int) (bool, error) {
	now := store.Millis(time.Now())
	created := false
	err := db.pushTx(ctx, func(tx *sqlx.Tx) error {
		var head int64
		if err := tx.GetContext(ctx, &head, `SELECT last_seq FROM employees WHERE id = ?`, s.Employee); err != nil {
			return noRows(err)
		}
		var owner int64
		err := tx.GetContext(ctx, &owner, `SELECT employee_id FROM push_subscriptions WHERE endpoint = ?`, s.Endpoint)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO push_subscriptions (employee_id, endpoint, p256dh, auth, decided_seq, created_at)
				VALUES (?, ?, ?, ?, ?, ?)`, s.Employee, s.Endpoint, s.P256DH, s.Auth, head, now)
		case err != nil:
		case owner == s.Employee:
			_, err = tx.ExecContext(ctx, `UPDATE push_subscriptions SET p256dh = ?, auth = ? WHERE endpoint = ?`,
				s.P256DH, s.Auth, s.Endpoint)
		default:
			// The browser now belongs to another employee: it starts afresh.
			created = true
			_, err = tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE endpoint = ?`, s.Endpoint)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO push_subscriptions (employee_id, endpoint, p256dh, auth, decided_seq, created_at)
					VALUES (?, ?, ?, ?, ?, ?)`, s.Employee, s.Endpoint, s.P256DH, s.Auth, head, now)
			}
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE employee_id = ?1 AND id NOT IN
			(SELECT id FROM push_subscriptions WHERE employee_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)`, s.Employee, max)
		return err
	})
	return created, wrap("save push subscription", err)
}

// DeletePushSubscription deletes the employee's subscription to endpoint.
func (db *DB) DeletePushSubscription(ctx context.Context, employee int64, endpoint string) error {
	return wrap("delete push subscription", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE employee_id = ? AND endpoint = ?`, employee, endpoint)
		return err
	}))
}

// PushSubscriptions lists the employee's subscriptions, oldest first.
func (db *DB) PushSubscriptions(ctx context.Context, employee int64) ([]store.PushSubscription, error) {
	var rows []pushSubRow
	err := db.x.SelectContext(ctx, &rows, `SELECT id, employee_id, endpoint, p256dh, auth, created_at
		FROM push_subscriptions WHERE employee_id = ? ORDER BY created_at, id`, employee)
	if err != nil {
		return nil, wrap("list push subscriptions", err)
	}
	out := make([]store.PushSubscription, len(rows))
	for i, r := range rows {
		out[i] = r.subscription()
	}
	return out, nil
}

// DropPushSubscription deletes a subscription and its jobs.
func (db *DB) DropPushSubscription(ctx context.Context, id int64) error {
	return wrap("drop push subscription", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ?`, id)
		return err
	}))
}

// MarkStreamed sets the streamed mark of the copies, for employees with
// subscriptions only (everyone else is never pushed, so their copies are
// not written again).
func (db *DB) MarkStreamed(ctx context.Context, marks []store.Streamed) error {
	if len(marks) == 0 {
		return nil
	}
	ids := make([]int64, len(marks))
	for i, m := range marks {
		ids[i] = m.Employee
	}
	js, _ := json.Marshal(ids)
	var subscribed []int64
	if err := db.x.SelectContext(ctx, &subscribed, `SELECT DISTINCT employee_id FROM push_subscriptions
		WHERE employee_id IN (SELECT value FROM json_each(?))`, string(js)); err != nil {
		return wrap("mark streamed", err)
	}
	if len(subscribed) == 0 {
		return nil
	}
	return wrap("mark streamed", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		for _, m := range marks {
			if !contains(subscribed, m.Employee) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE inbox SET streamed = 1
				WHERE employee_id = ? AND seq BETWEEN ? AND ? AND streamed = 0`, m.Employee, m.From, m.To); err != nil {
				return err
			}
		}
		return nil
	}))
}

func contains(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// decision is one subscription's range of copies to decide: (From, Upto].
type decision struct {
	Sub  int64 `db:"id" json:"s"`
	Emp  int64 `db:"employee_id" json:"e"`
	From int64 `db:"decided_seq" json:"f"`
	Upto int64 `db:"upto" json:"u"`
}

// QueuePushes decides the due copies of up to r.Limit subscriptions. A
// subscription's range ends before its first copy that is not due yet, so
// its cursor never passes an undecided copy. The ranges are read outside
// writeMu (the scan of the subscriptions must not hold publishes up); the
// write then takes only the subscriptions whose cursor is still where it
// was read.
func (db *DB) QueuePushes(ctx context.Context, r store.PushRule) (int, bool, error) {
	now := store.Millis(r.Now)
	cutoff := store.Millis(r.Now.Add(-r.Delay))
	var ds []decision
	// Only subscriptions with a due copy are taken, so those still
	// waiting leave room for others.
	err := db.x.SelectContext(ctx, &ds, `
		SELECT id, employee_id, decided_seq, upto FROM (
			SELECT s.id, s.employee_id, s.decided_seq,
				coalesce((SELECT min(i.seq) - 1 FROM inbox i JOIN notifications n ON n.id = i.notification_id
					WHERE i.employee_id = s.employee_id AND i.seq > s.decided_seq AND coalesce(n.deliver_at, n.created_at) > ?1), e.last_seq) AS upto
			FROM push_subscriptions s JOIN employees e ON e.id = s.employee_id
			WHERE s.decided_seq < e.last_seq
		) WHERE upto > decided_seq ORDER BY id LIMIT ?2`, cutoff, r.Limit+1)
	if err != nil {
		return 0, false, wrap("queue pushes", err)
	}
	more := false
	if len(ds) > r.Limit {
		ds, more = ds[:r.Limit], true
	}
	if len(ds) == 0 {
		return 0, more, nil
	}
	js, _ := json.Marshal(ds)
	var queued int64
	err = db.pushTx(ctx, func(tx *sqlx.Tx) error {
		// The conditions of a push, one clause each.
		res, err := tx.ExecContext(ctx, `
			INSERT INTO push_jobs (subscription_id, employee_id, seq, due_at, expires_at)
			SELECT s.id, i.employee_id, i.seq, ?2, ?3
			FROM json_each(?1) d
			JOIN push_subscriptions s ON s.id = d.value->>'s' AND s.decided_seq = d.value->>'f'
			JOIN inbox i ON i.employee_id = s.employee_id AND i.seq > d.value->>'f' AND i.seq <= d.value->>'u'
			JOIN notifications n ON n.id = i.notification_id
			LEFT JOIN preferences p ON p.employee_id = i.employee_id
			WHERE i.read_at IS NULL
				AND i.seen_at IS NULL
				AND i.streamed = 0
				AND i.muted = 0
				AND (i.expires_at IS NULL OR i.expires_at > ?2)
				AND coalesce(p.push, 1) = 1
				AND (n.required OR p.muted IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(p.muted) m WHERE m.value = n.type
					OR (m.value LIKE '%*' AND substr(n.type, 1, length(m.value) - 1) = substr(m.value, 1, length(m.value) - 1))))
			ORDER BY i.employee_id, i.seq`, string(js), now, store.Millis(r.Now.Add(r.TTL)))
		if err != nil {
			return err
		}
		queued, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `UPDATE push_subscriptions SET decided_seq = d.value->>'u'
			FROM json_each(?1) d WHERE push_subscriptions.id = d.value->>'s' AND push_subscriptions.decided_seq = d.value->>'f'`, string(js))
		return err
	})
	return int(queued), more, wrap("queue pushes", err)
}

type pushJobRow struct {
	ID        int64          `db:"id"`
	Seq       int64          `db:"seq"`
	Attempts  int            `db:"attempts"`
	Expires   int64          `db:"expires_at"`
	NID       int64          `db:"nid"`
	Type      string         `db:"type"`
	Title     string         `db:"title"`
	Body      string         `db:"body"`
	Data      sql.NullString `db:"data"`
	CreatedAt int64          `db:"created_at"`
	URL       sql.NullString `db:"url"`
	SubID     int64          `db:"sub_id"`
	Employee  int64          `db:"employee_id"`
	Endpoint  string         `db:"endpoint"`
	P256DH    []byte         `db:"p256dh"`
	Auth      []byte         `db:"auth"`
	SubAt     int64          `db:"sub_created"`
}

// ClaimPushes leases up to limit due jobs.
func (db *DB) ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.PushJob, error) {
	var rows []pushJobRow
	err := db.pushTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		err := tx.SelectContext(ctx, &ids, `UPDATE push_jobs SET due_at = ?1, attempts = attempts + 1
			WHERE id IN (SELECT id FROM push_jobs WHERE due_at <= ?2 ORDER BY due_at, id LIMIT ?3) RETURNING id`,
			store.Millis(now.Add(lease)), store.Millis(now), limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		js, _ := json.Marshal(ids)
		return tx.SelectContext(ctx, &rows, `
			SELECT j.id, j.seq, j.attempts, j.expires_at, n.id AS nid, n.type, n.title, n.body, n.data, n.created_at, n.url,
				s.id AS sub_id, s.employee_id, s.endpoint, s.p256dh, s.auth, s.created_at AS sub_created
			FROM push_jobs j
			JOIN push_subscriptions s ON s.id = j.subscription_id
			JOIN inbox i ON i.employee_id = j.employee_id AND i.seq = j.seq
			JOIN notifications n ON n.id = i.notification_id
			WHERE j.id IN (SELECT value FROM json_each(?)) ORDER BY j.due_at, j.id`, string(js))
	})
	if err != nil {
		return nil, wrap("claim pushes", err)
	}
	out := make([]store.PushJob, len(rows))
	for i, r := range rows {
		out[i] = store.PushJob{
			ID: r.ID, Seq: r.Seq, Attempts: r.Attempts,
			Subscription: pushSubRow{r.SubID, r.Employee, r.Endpoint, r.P256DH, r.Auth, r.SubAt}.subscription(),
			Expires:      store.FromMillis(r.Expires),
			Notification: store.Notification{
				ID: r.NID, Type: r.Type, Title: r.Title, Body: r.Body, CreatedAt: store.FromMillis(r.CreatedAt),
				URL: r.URL.String,
			},
		}
		if r.Data.Valid {
			out[i].Notification.Data = json.RawMessage(r.Data.String)
		}
	}
	return out, nil
}

// CompletePush deletes a job.
func (db *DB) CompletePush(ctx context.Context, id int64) error {
	return wrap("complete push", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM push_jobs WHERE id = ?`, id)
		return err
	}))
}

// RetryPush makes a job due again at at.
func (db *DB) RetryPush(ctx context.Context, id int64, at time.Time) error {
	return wrap("retry push", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE push_jobs SET due_at = ? WHERE id = ?`, store.Millis(at), id)
		return err
	}))
}

// SettlePushes records outcomes in one transaction: one sync for a whole
// batch of pushes, so the worker's bookkeeping barely touches the writer
// that publishes share.
func (db *DB) SettlePushes(ctx context.Context, outcomes []store.PushOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	return wrap("settle pushes", db.pushTx(ctx, func(tx *sqlx.Tx) error {
		for _, o := range outcomes {
			var err error
			switch {
			case o.DropSubscription != 0:
				_, err = tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ?`, o.DropSubscription)
				if err == nil {
					_, err = tx.ExecContext(ctx, `DELETE FROM push_jobs WHERE id = ?`, o.Job)
				}
			case !o.Retry.IsZero():
				_, err = tx.ExecContext(ctx, `UPDATE push_jobs SET due_at = ? WHERE id = ?`, store.Millis(o.Retry), o.Job)
			default:
				_, err = tx.ExecContext(ctx, `DELETE FROM push_jobs WHERE id = ?`, o.Job)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// PushQueueDepth counts the jobs.
func (db *DB) PushQueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := db.x.GetContext(ctx, &n, `SELECT count(*) FROM push_jobs`); err != nil {
		return 0, wrap("count push jobs", err)
	}
	return n, nil
}

// pushTx runs fn in a write transaction under writeMu.
func (db *DB) pushTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	defer db.boundWALLocked()
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
