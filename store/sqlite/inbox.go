package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/corp/herald/store"
)

type inboxRow struct {
	Seq            int64          `db:"seq"`
	ReadAt         sql.NullInt64  `db:"read_at"`
	NotificationID int64          `db:"id"`
	Type           string         `db:"type"`
	Title          string         `db:"title"`
	Body           string         `db:"body"`
	Data           sql.NullString `db:"data"`
	CreatedAt      int64          `db:"created_at"`
}

const inboxCols = `i.seq, i.read_at, n.id, n.type, n.title, n.body, n.data, n.created_at`

func (r inboxRow) item() store.InboxItem {
	it := store.InboxItem{
		Seq: r.Seq,
		Notification: store.Notification{
			ID: r.NotificationID, Type: r.Type, Title: r.Title, Body: r.Body,
			CreatedAt: store.FromMillis(r.CreatedAt),
		},
	}
	if r.Data.Valid {
		it.Notification.Data = json.RawMessage(r.Data.String)
	}
	if r.ReadAt.Valid {
		t := store.FromMillis(r.ReadAt.Int64)
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
		WHERE i.employee_id = ? AND i.seq < ? AND (? = 0 OR i.read_at IS NULL)
		ORDER BY i.seq DESC LIMIT ?`, q.Employee, q.Bound(), boolInt(q.UnreadOnly), q.Limit+1)
	if err != nil {
		return store.InboxPage{}, wrap("read inbox", err)
	}
	var unread int
	if err := db.x.GetContext(ctx, &unread, `SELECT count(*) FROM inbox WHERE employee_id = ? AND read_at IS NULL`, q.Employee); err != nil {
		return store.InboxPage{}, wrap("count unread", err)
	}
	return q.Page(items(rows), unread), nil
}

// Since returns up to limit items after seq, oldest first.
func (db *DB) Since(ctx context.Context, employee, after int64, limit int) ([]store.InboxItem, error) {
	var rows []inboxRow
	st, err := db.prepared(ctx, db.x, `SELECT `+inboxCols+` FROM inbox i JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = ? AND i.seq > ? ORDER BY i.seq LIMIT ?`)
	if err == nil {
		err = st.SelectContext(ctx, &rows, employee, after, limit)
	}
	if err != nil {
		return nil, wrap("read inbox since", err)
	}
	return items(rows), nil
}

// Head returns the employee's latest seq.
func (db *DB) Head(ctx context.Context, employee int64) (int64, error) {
	var seq int64
	st, err := db.prepared(ctx, db.x, `SELECT last_seq FROM employees WHERE id = ?`)
	if err == nil {
		err = st.GetContext(ctx, &seq, employee)
	}
	if err != nil {
		return 0, wrap("read head", noRows(err))
	}
	return seq, nil
}

// MarkRead marks seqs (or everything) of the employee's inbox read.
func (db *DB) MarkRead(ctx context.Context, employee int64, seqs []int64, all bool) (int, int, error) {
	now := store.Millis(time.Now())
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	defer db.boundWALLocked()
	var (
		res sql.Result
		err error
	)
	if all {
		res, err = db.x.ExecContext(ctx, `UPDATE inbox SET read_at = ? WHERE employee_id = ? AND read_at IS NULL`, now, employee)
	} else {
		js, _ := json.Marshal(seqs)
		res, err = db.x.ExecContext(ctx, `UPDATE inbox SET read_at = ? WHERE employee_id = ? AND read_at IS NULL
			AND seq IN (SELECT value FROM json_each(?))`, now, employee, string(js))
	}
	if err != nil {
		return 0, 0, wrap("mark read", err)
	}
	marked, _ := res.RowsAffected()
	var unread int
	if err := db.x.GetContext(ctx, &unread, `SELECT count(*) FROM inbox WHERE employee_id = ? AND read_at IS NULL`, employee); err != nil {
		return 0, 0, wrap("count unread", err)
	}
	return int(marked), unread, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
