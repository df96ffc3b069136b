package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

type inboxRow struct {
	Seq            int64          `db:"seq"`
	ReadAt         sql.NullTime   `db:"read_at"`
	NotificationID int64          `db:"id"`
	Type           string         `db:"type"`
	Title          string         `db:"title"`
	Body           string         `db:"body"`
	Data           sql.NullString `db:"data"`
	CreatedAt      time.Time      `db:"created_at"`
}

const inboxCols = `i.seq, i.read_at, n.id, n.type, n.title, n.body, n.data, n.created_at`

func (r inboxRow) item() store.InboxItem {
	it := store.InboxItem{
		Seq: r.Seq,
		Notification: store.Notification{
			ID: r.NotificationID, Type: r.Type, Title: r.Title, Body: r.Body, CreatedAt: utc(r.CreatedAt),
		},
	}
	if r.Data.Valid {
		it.Notification.Data = json.RawMessage(r.Data.String)
	}
	if r.ReadAt.Valid {
		t := utc(r.ReadAt.Time)
		it.ReadAt = &t
	}
	return it
}

func items(rows []inboxRow) []store.InboxItem {
	out := make([]store.InboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out
}

// Inbox returns a page of the employee's inbox, newest first.
func (db *DB) Inbox(ctx context.Context, q store.InboxQuery) (store.InboxPage, error) {
	var rows []inboxRow
	err := db.x.SelectContext(ctx, &rows, `SELECT `+inboxCols+` FROM inbox i JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = $1 AND i.seq < $2 AND (NOT $3 OR i.read_at IS NULL)
		ORDER BY i.seq DESC LIMIT $4`, q.Employee, q.Bound(), q.UnreadOnly, q.Limit+1)
	if err != nil {
		return store.InboxPage{}, wrap(ctx, "read inbox", err)
	}
	var unread int
	if err := db.x.GetContext(ctx, &unread, `SELECT count(*) FROM inbox WHERE employee_id = $1 AND read_at IS NULL`, q.Employee); err != nil {
		return store.InboxPage{}, wrap(ctx, "count unread", err)
	}
	return q.Page(items(rows), unread), nil
}

// Since returns up to limit items after seq, oldest first.
func (db *DB) Since(ctx context.Context, employee, after int64, limit int) ([]store.InboxItem, error) {
	var rows []inboxRow
	err := db.x.SelectContext(ctx, &rows, `SELECT `+inboxCols+` FROM inbox i JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3`, employee, after, limit)
	if err != nil {
		return nil, wrap(ctx, "read inbox since", err)
	}
	return items(rows), nil
}

// Head returns the employee's latest seq.
func (db *DB) Head(ctx context.Context, employee int64) (int64, error) {
	var seq int64
	err := db.x.GetContext(ctx, &seq, `SELECT last_seq FROM employees WHERE id = $1`, employee)
	if err != nil {
		return 0, wrap(ctx, "read head", noRows(err))
	}
	return seq, nil
}

// MarkRead marks seqs (or everything) of the employee's inbox read and
// counts what stays unread, in one statement.
func (db *DB) MarkRead(ctx context.Context, employee int64, seqs []int64, all bool) (int, int, error) {
	if seqs == nil {
		seqs = []int64{}
	}
	var res struct {
		Marked int `db:"marked"`
		Unread int `db:"unread"`
	}
	// The count runs on the statement's snapshot, which does not see the
	// UPDATE's own changes: the rows just marked are subtracted.
	err := db.write(ctx, func(q querier) error {
		return q.GetContext(ctx, &res, `
		WITH m AS (
			UPDATE inbox SET read_at = $2 WHERE employee_id = $1 AND read_at IS NULL
				AND ($3 OR seq = ANY($4::bigint[]))
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM m) AS marked,
			(SELECT count(*) FROM inbox WHERE employee_id = $1 AND read_at IS NULL) - (SELECT count(*) FROM m) AS unread`,
			employee, now(), all, pq.Int64Array(seqs))
	})
	if err != nil {
		return 0, 0, wrap(ctx, "mark read", err)
	}
	return res.Marked, res.Unread, nil
}
