package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/store"
)

type inboxRow struct {
	Seq            int64          `db:"seq"`
	ReadAt         sql.NullTime   `db:"read_at"`
	SeenAt         sql.NullTime   `db:"seen_at"`
	ArchivedAt     sql.NullTime   `db:"archived_at"`
	NotificationID int64          `db:"id"`
	Type           string         `db:"type"`
	Title          string         `db:"title"`
	Body           string         `db:"body"`
	Data           sql.NullString `db:"data"`
	CreatedAt      time.Time      `db:"created_at"`
	URL            sql.NullString `db:"url"`
	ExpiresAt      sql.NullTime   `db:"expires_at"`
}

const inboxCols = `i.seq, i.read_at, i.seen_at, i.archived_at, n.id, n.type, n.title, n.body, n.data, n.created_at, n.url, n.expires_at`

func optTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := utc(t.Time)
	return &u
}

func (r inboxRow) item() store.InboxItem {
	it := store.InboxItem{
		Seq: r.Seq,
		Notification: store.Notification{
			ID: r.NotificationID, Type: r.Type, Title: r.Title, Body: r.Body, CreatedAt: utc(r.CreatedAt),
			URL: r.URL.String, ExpiresAt: optTime(r.ExpiresAt),
		},
		ReadAt: optTime(r.ReadAt), SeenAt: optTime(r.SeenAt), ArchivedAt: optTime(r.ArchivedAt),
	}
	if r.Data.Valid {
		it.Notification.Data = json.RawMessage(r.Data.String)
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

// inboxSQL builds the page query of q. Type filters check the copies' own
// type (migration 00008) as they walk them, so only the page's items join
// notifications.
func inboxSQL(q store.InboxQuery) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + inboxCols + ` FROM inbox i JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = $1 AND i.seq < $2 AND (i.expires_at IS NULL OR i.expires_at > $3)`)
	args := []any{q.Employee, q.Bound(), now()}
	if q.Archived {
		b.WriteString(` AND i.archived_at IS NOT NULL`)
	} else {
		b.WriteString(` AND i.archived_at IS NULL`)
	}
	if q.UnreadOnly {
		b.WriteString(` AND i.read_at IS NULL`)
	}
	if q.UnseenOnly {
		b.WriteString(` AND i.seen_at IS NULL`)
	}
	if prefix, ok := strings.CutSuffix(q.Type, "*"); ok {
		args = append(args, prefix)
		b.WriteString(` AND starts_with(i.type, $` + strconv.Itoa(len(args)) + `)`)
	} else if q.Type != "" {
		args = append(args, q.Type)
		b.WriteString(` AND i.type = $` + strconv.Itoa(len(args)))
	}
	args = append(args, q.Limit+1)
	b.WriteString(` ORDER BY i.seq DESC LIMIT $` + strconv.Itoa(len(args)))
	// The counts ride on every row, so a page is one round trip (and one
	// snapshot); an empty page reads them on their own.
	return `SELECT p.*, c.unread AS unread_count, c.unseen AS unseen_count FROM (` + b.String() + `) p
		CROSS JOIN (SELECT ` + countsAt("$1", "$3") + `) c ORDER BY p.seq DESC`, args
}

// pageRow is an inbox item with the employee's counts.
type pageRow struct {
	inboxRow
	UnreadCount int `db:"unread_count"`
	UnseenCount int `db:"unseen_count"`
}

// Inbox returns a page of the employee's inbox, newest first.
func (db *DB) Inbox(ctx context.Context, q store.InboxQuery) (store.InboxPage, error) {
	var rows []pageRow
	query, args := inboxSQL(q)
	stmt, err := db.prepared(ctx, query)
	if err == nil {
		err = stmt.SelectContext(ctx, &rows, args...)
	}
	if err != nil {
		return store.InboxPage{}, wrap(ctx, "read inbox", err)
	}
	if len(rows) == 0 {
		c, err := db.Counts(ctx, q.Employee)
		if err != nil {
			return store.InboxPage{}, err
		}
		return q.Page([]store.InboxItem{}, c), nil
	}
	out := make([]store.InboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return q.Page(out, store.Counts{Unread: rows[0].UnreadCount, Unseen: rows[0].UnseenCount}), nil
}

// sinceSQL reads the items after a seq, oldest first (Since).
const sinceSQL = `SELECT ` + inboxCols + ` FROM inbox i JOIN notifications n ON n.id = i.notification_id
	WHERE i.employee_id = $1 AND i.seq > $2 AND NOT i.muted AND (i.expires_at IS NULL OR i.expires_at > $4)
	ORDER BY i.seq LIMIT $3`

// Since returns up to limit items after seq, oldest first: expired items
// and muted copies are left out.
func (db *DB) Since(ctx context.Context, employee, after int64, limit int) ([]store.InboxItem, error) {
	var rows []inboxRow
	stmt, err := db.prepared(ctx, sinceSQL)
	if err == nil {
		err = stmt.SelectContext(ctx, &rows, employee, after, limit, now())
	}
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

// MarkRead marks seqs (or everything) of the employee's inbox read.
func (db *DB) MarkRead(ctx context.Context, employee int64, seqs []int64, all bool) (int, int, error) {
	marked, c, err := db.SetState(ctx, employee, store.OpRead, seqs, all)
	return marked, c.Unread, err
}
