package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// Web Push. Several instances share the queue: a decision locks the
// subscriptions it decides (FOR UPDATE SKIP LOCKED), a claim the jobs it
// takes, so another instance passes over them instead of waiting.

type pushSubRow struct {
	ID        int64     `db:"id"`
	Employee  int64     `db:"employee_id"`
	Endpoint  string    `db:"endpoint"`
	P256DH    []byte    `db:"p256dh"`
	Auth      []byte    `db:"auth"`
	CreatedAt time.Time `db:"created_at"`
}

func (r pushSubRow) subscription() store.PushSubscription {
	return store.PushSubscription{
		ID: r.ID, Employee: r.Employee, Endpoint: r.Endpoint, P256DH: r.P256DH, Auth: r.Auth,
		CreatedAt: utc(r.CreatedAt),
	}
}

// SavePushSubscription stores a subscription, replacing the keys of a known
// endpoint, and keeps the employee's newest max. The employee's row is
// locked first, so two saves of one employee trim one after the other.
func (db *DB) SavePushSubscription(ctx context.Context, s store.PushSubscription, max int) (bool, error) {
	created := false
	err := db.pushTx(ctx, func(tx *sqlx.Tx) error {
		var head int64
		if err := tx.GetContext(ctx, &head, `SELECT last_seq FROM employees WHERE id = $1 FOR SHARE`, s.Employee); err != nil {
			return noRows(err)
		}
		// A new endpoint, or one moving from another employee, starts at
		// the head; the same employee's keeps its place and creation.
		var inserted bool
		err := tx.GetContext(ctx, &inserted, `
			INSERT INTO push_subscriptions (employee_id, endpoint, p256dh, auth, decided_seq, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth,
				employee_id = excluded.employee_id,
				decided_seq = CASE WHEN push_subscriptions.employee_id = excluded.employee_id
					THEN push_subscriptions.decided_seq ELSE excluded.decided_seq END,
				created_at = CASE WHEN push_subscriptions.employee_id = excluded.employee_id
					THEN push_subscriptions.created_at ELSE excluded.created_at END
			RETURNING (xmax = 0) OR created_at = $6`,
			s.Employee, s.Endpoint, s.P256DH, s.Auth, head, now())
		if err != nil {
			return err
		}
		created = inserted
		_, err = tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE employee_id = $1 AND id NOT IN
			(SELECT id FROM push_subscriptions WHERE employee_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)`, s.Employee, max)
		return err
	})
	return created, wrap(ctx, "save push subscription", err)
}

// DeletePushSubscription deletes the employee's subscription to endpoint.
func (db *DB) DeletePushSubscription(ctx context.Context, employee int64, endpoint string) error {
	_, err := db.x.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE employee_id = $1 AND endpoint = $2`, employee, endpoint)
	return wrap(ctx, "delete push subscription", err)
}

// PushSubscriptions lists the employee's subscriptions, oldest first.
func (db *DB) PushSubscriptions(ctx context.Context, employee int64) ([]store.PushSubscription, error) {
	var rows []pushSubRow
	err := db.x.SelectContext(ctx, &rows, `SELECT id, employee_id, endpoint, p256dh, auth, created_at
		FROM push_subscriptions WHERE employee_id = $1 ORDER BY created_at, id`, employee)
	if err != nil {
		return nil, wrap(ctx, "list push subscriptions", err)
	}
	out := make([]store.PushSubscription, len(rows))
	for i, r := range rows {
		out[i] = r.subscription()
	}
	return out, nil
}

// DropPushSubscription deletes a subscription and its jobs.
func (db *DB) DropPushSubscription(ctx context.Context, id int64) error {
	_, err := db.x.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = $1`, id)
	return wrap(ctx, "drop push subscription", err)
}

// MarkStreamed sets the streamed mark of the copies, in one statement, for
// employees with subscriptions only.
func (db *DB) MarkStreamed(ctx context.Context, marks []store.Streamed) error {
	if len(marks) == 0 {
		return nil
	}
	emp := make([]int64, len(marks))
	from := make([]int64, len(marks))
	to := make([]int64, len(marks))
	for i, m := range marks {
		emp[i], from[i], to[i] = m.Employee, m.From, m.To
	}
	_, err := db.x.ExecContext(ctx, `
		UPDATE inbox i SET streamed = true
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m(e, f, t)
		WHERE i.employee_id = m.e AND i.seq BETWEEN m.f AND m.t AND NOT i.streamed
			AND EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.employee_id = m.e)`,
		pq.Int64Array(emp), pq.Int64Array(from), pq.Int64Array(to))
	return wrap(ctx, "mark streamed", err)
}

// decision is one subscription's range of copies to decide: (From, Upto].
type decision struct {
	Sub  int64 `db:"id"`
	Emp  int64 `db:"employee_id"`
	From int64 `db:"decided_seq"`
	Upto int64 `db:"upto"`
}

// QueuePushes decides the due copies of up to r.Limit subscriptions. The
// subscriptions are locked first (another instance skips them), then their
// ranges are read in a second statement, whose fresh snapshot sees the
// cursors as the last decision left them. A range ends before the first
// copy that is not due yet, so a cursor never passes an undecided copy.
func (db *DB) QueuePushes(ctx context.Context, r store.PushRule) (int, bool, error) {
	cutoff := r.Now.Add(-r.Delay)
	var queued int64
	var more bool
	err := db.pushTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		err := tx.SelectContext(ctx, &ids, `
			SELECT s.id FROM push_subscriptions s JOIN employees e ON e.id = s.employee_id
			WHERE s.decided_seq < e.last_seq AND coalesce((
				SELECT coalesce(n.deliver_at, n.created_at) FROM inbox i JOIN notifications n ON n.id = i.notification_id
				WHERE i.employee_id = s.employee_id AND i.seq > s.decided_seq ORDER BY i.seq LIMIT 1), '-infinity') <= $1
			ORDER BY s.id LIMIT $2 FOR UPDATE OF s SKIP LOCKED`, cutoff, r.Limit+1)
		if err != nil {
			return err
		}
		if len(ids) > r.Limit {
			ids, more = ids[:r.Limit], true
		}
		if len(ids) == 0 {
			return nil
		}
		var ds []decision
		err = tx.SelectContext(ctx, &ds, `
			SELECT s.id, s.employee_id, s.decided_seq,
				coalesce((SELECT min(i.seq) - 1 FROM inbox i JOIN notifications n ON n.id = i.notification_id
					WHERE i.employee_id = s.employee_id AND i.seq > s.decided_seq AND coalesce(n.deliver_at, n.created_at) > $2), e.last_seq) AS upto
			FROM push_subscriptions s JOIN employees e ON e.id = s.employee_id
			WHERE s.id = ANY($1::bigint[])`, pq.Int64Array(ids), cutoff)
		if err != nil {
			return err
		}
		sub := make([]int64, 0, len(ds))
		emp := make([]int64, 0, len(ds))
		from := make([]int64, 0, len(ds))
		upto := make([]int64, 0, len(ds))
		for _, d := range ds {
			if d.Upto > d.From {
				sub, emp, from, upto = append(sub, d.Sub), append(emp, d.Emp), append(from, d.From), append(upto, d.Upto)
			}
		}
		if len(sub) == 0 {
			return nil
		}
		// The conditions of a push, one clause each.
		res, err := tx.ExecContext(ctx, `
			INSERT INTO push_jobs (subscription_id, employee_id, seq, due_at, expires_at)
			SELECT d.s, i.employee_id, i.seq, $5, $6
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(s, e, f, u)
			JOIN inbox i ON i.employee_id = d.e AND i.seq > d.f AND i.seq <= d.u
			JOIN notifications n ON n.id = i.notification_id
			LEFT JOIN preferences p ON p.employee_id = i.employee_id
			WHERE i.read_at IS NULL
				AND i.seen_at IS NULL
				AND NOT i.streamed
				AND NOT i.muted
				AND (i.expires_at IS NULL OR i.expires_at > $5)
				AND coalesce(p.push, true)
				AND (n.required OR p.muted IS NULL OR NOT herald_muted(p.muted, n.type))
			ORDER BY i.employee_id, i.seq`,
			pq.Int64Array(sub), pq.Int64Array(emp), pq.Int64Array(from), pq.Int64Array(upto), r.Now.UTC(), r.Now.Add(r.TTL).UTC())
		if err != nil {
			return err
		}
		queued, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `UPDATE push_subscriptions s SET decided_seq = d.u
			FROM unnest($1::bigint[], $2::bigint[]) AS d(s, u) WHERE s.id = d.s`, pq.Int64Array(sub), pq.Int64Array(upto))
		return err
	})
	return int(queued), more, wrap(ctx, "queue pushes", err)
}

type pushJobRow struct {
	ID        int64          `db:"id"`
	Seq       int64          `db:"seq"`
	Attempts  int            `db:"attempts"`
	Expires   time.Time      `db:"expires_at"`
	NID       int64          `db:"nid"`
	Type      string         `db:"type"`
	Title     string         `db:"title"`
	Body      string         `db:"body"`
	Data      sql.NullString `db:"data"`
	CreatedAt time.Time      `db:"created_at"`
	URL       sql.NullString `db:"url"`
	SubID     int64          `db:"sub_id"`
	Employee  int64          `db:"employee_id"`
	Endpoint  string         `db:"endpoint"`
	P256DH    []byte         `db:"p256dh"`
	Auth      []byte         `db:"auth"`
	SubAt     time.Time      `db:"sub_created"`
}

// ClaimPushes leases up to limit due jobs, skipping those another instance
// is claiming.
func (db *DB) ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.PushJob, error) {
	var rows []pushJobRow
	err := db.x.SelectContext(ctx, &rows, `
		WITH c AS (
			UPDATE push_jobs j SET due_at = $2, attempts = j.attempts + 1
			WHERE j.id IN (SELECT id FROM push_jobs WHERE due_at <= $1 ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING j.id, j.subscription_id, j.employee_id, j.seq, j.attempts, j.expires_at
		)
		SELECT c.id, c.seq, c.attempts, c.expires_at, n.id AS nid, n.type, n.title, n.body, n.data, n.created_at, n.url,
			s.id AS sub_id, s.employee_id, s.endpoint, s.p256dh, s.auth, s.created_at AS sub_created
		FROM c
		JOIN push_subscriptions s ON s.id = c.subscription_id
		JOIN inbox i ON i.employee_id = c.employee_id AND i.seq = c.seq
		JOIN notifications n ON n.id = i.notification_id
		ORDER BY c.id`, now.UTC(), now.Add(lease).UTC(), limit)
	if err != nil {
		return nil, wrap(ctx, "claim pushes", err)
	}
	out := make([]store.PushJob, len(rows))
	for i, r := range rows {
		out[i] = store.PushJob{
			ID: r.ID, Seq: r.Seq, Attempts: r.Attempts, Expires: utc(r.Expires),
			Subscription: pushSubRow{r.SubID, r.Employee, r.Endpoint, r.P256DH, r.Auth, r.SubAt}.subscription(),
			Notification: store.Notification{
				ID: r.NID, Type: r.Type, Title: r.Title, Body: r.Body, CreatedAt: utc(r.CreatedAt),
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
	_, err := db.x.ExecContext(ctx, `DELETE FROM push_jobs WHERE id = $1`, id)
	return wrap(ctx, "complete push", err)
}

// RetryPush makes a job due again at at.
func (db *DB) RetryPush(ctx context.Context, id int64, at time.Time) error {
	_, err := db.x.ExecContext(ctx, `UPDATE push_jobs SET due_at = $2 WHERE id = $1`, id, at.UTC())
	return wrap(ctx, "retry push", err)
}

// SettlePushes records outcomes in one transaction of three statements.
func (db *DB) SettlePushes(ctx context.Context, outcomes []store.PushOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	var done, retry, drops []int64
	var at []time.Time
	for _, o := range outcomes {
		switch {
		case o.DropSubscription != 0:
			drops = append(drops, o.DropSubscription)
			done = append(done, o.Job)
		case !o.Retry.IsZero():
			retry = append(retry, o.Job)
			at = append(at, o.Retry.UTC())
		default:
			done = append(done, o.Job)
		}
	}
	err := db.pushTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ANY($1::bigint[])`, pq.Int64Array(drops)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_jobs WHERE id = ANY($1::bigint[])`, pq.Int64Array(done)); err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		ats := make([]string, len(at))
		for i, t := range at {
			ats[i] = t.Format(time.RFC3339Nano)
		}
		_, err := tx.ExecContext(ctx, `UPDATE push_jobs j SET due_at = d.at
			FROM unnest($1::bigint[], $2::timestamptz[]) AS d(id, at) WHERE j.id = d.id`, pq.Int64Array(retry), pq.StringArray(ats))
		return err
	})
	return wrap(ctx, "settle pushes", err)
}

// PushQueueDepth counts the jobs.
func (db *DB) PushQueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := db.x.GetContext(ctx, &n, `SELECT count(*) FROM push_jobs`); err != nil {
		return 0, wrap(ctx, "count push jobs", err)
	}
	return n, nil
}

// pushTx runs fn in a transaction.
func (db *DB) pushTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return inFlight(err)
	}
	return inFlight(tx.Commit())
}
