package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/corp/herald/store"
)

// notificationRow is a notification's columns.
type notificationRow struct {
	NotificationID int64          `db:"id"`
	Type           string         `db:"type"`
	Title          string         `db:"title"`
	Body           string         `db:"body"`
	Data           sql.NullString `db:"data"`
	CreatedAt      int64          `db:"created_at"`
	URL            sql.NullString `db:"url"`
	ExpiresAt      sql.NullInt64  `db:"expires_at"`
	Required       bool           `db:"required"`
}

const notificationCols = `id, type, title, body, data, created_at, url, expires_at`

func (r notificationRow) notification() store.Notification {
	n := store.Notification{
		ID: r.NotificationID, Type: r.Type, Title: r.Title, Body: r.Body,
		CreatedAt: store.FromMillis(r.CreatedAt), URL: r.URL.String, ExpiresAt: optMillis(r.ExpiresAt),
	}
	if r.Data.Valid {
		n.Data = json.RawMessage(r.Data.String)
	}
	return n
}

type inboxRow struct {
	Seq        int64         `db:"seq"`
	ReadAt     sql.NullInt64 `db:"read_at"`
	SeenAt     sql.NullInt64 `db:"seen_at"`
	ArchivedAt sql.NullInt64 `db:"archived_at"`
	notificationRow
}

const inboxCols = `i.seq, i.read_at, i.seen_at, i.archived_at, n.id, n.type, n.title, n.body, n.data, n.created_at, n.url, n.expires_at`

func optMillis(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMillis(v.Int64)
	return &t
}

func (r inboxRow) item() store.InboxItem {
	return store.InboxItem{
		Seq: r.Seq, Notification: r.notification(),
		ReadAt: optMillis(r.ReadAt), SeenAt: optMillis(r.SeenAt), ArchivedAt: optMillis(r.ArchivedAt),
	}
}

func items(rows []inboxRow) []store.InboxItem {
	out := make([]store.InboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out
}

// inboxSQL builds the page query of q: one statement per combination of
// filters, so each is prepared once.
func inboxSQL(q store.InboxQuery) (string, []any) {
	var b strings.Builder
	// A filter names the partial index that holds just its items, so a
	// page of old unread items does not walk the whole inbox (see countsSQL).
	// A type filter, exact or a prefix, checks the copies' own type
	// (migration 00006) as it walks them, so only the page's items join
	// notifications.
	prefix, isPrefix := strings.CutSuffix(q.Type, "*")
	from := `inbox i`
	switch {
	case q.Archived:
		from = `inbox i INDEXED BY inbox_archived`
	case q.UnreadOnly:
		from = `inbox i INDEXED BY inbox_unread`
	case q.UnseenOnly:
		from = `inbox i INDEXED BY inbox_unseen`
	}
	b.WriteString(`SELECT ` + inboxCols + ` FROM ` + from + ` JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = ? AND i.seq < ? AND (i.expires_at IS NULL OR i.expires_at > ?)`)
	args := []any{q.Employee, q.Bound(), store.Millis(time.Now())}
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
	if isPrefix {
		b.WriteString(` AND substr(i.type, 1, ?) = ?`)
		args = append(args, len(prefix), prefix)
	} else if q.Type != "" {
		b.WriteString(` AND i.type = ?`)
		args = append(args, q.Type)
	}
	b.WriteString(` ORDER BY i.seq DESC LIMIT ?`)
	return b.String(), append(args, q.Limit+1)
}

// Inbox returns a page of the employee's inbox, newest first.
func (db *DB) Inbox(ctx context.Context, q store.InboxQuery) (store.InboxPage, error) {
	var rows []inboxRow
	query, args := inboxSQL(q)
	st, err := db.prepared(ctx, db.x, query)
	if err == nil {
		err = st.SelectContext(ctx, &rows, args...)
	}
	if err != nil {
		return store.InboxPage{}, wrap("read inbox", err)
	}
	c, err := db.Counts(ctx, q.Employee)
	if err != nil {
		return store.InboxPage{}, err
	}
	return q.Page(items(rows), c), nil
}

// Since returns up to limit items after seq, oldest first: expired items
// and muted copies are left out.
func (db *DB) Since(ctx context.Context, employee, after int64, limit int) ([]store.InboxItem, error) {
	var rows []inboxRow
	st, err := db.prepared(ctx, db.x, `SELECT `+inboxCols+` FROM inbox i JOIN notifications n ON n.id = i.notification_id
		WHERE i.employee_id = ? AND i.seq > ? AND i.muted = 0 AND (i.expires_at IS NULL OR i.expires_at > ?)
		ORDER BY i.seq LIMIT ?`)
	if err == nil {
		err = st.SelectContext(ctx, &rows, employee, after, store.Millis(time.Now()), limit)
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
	marked, c, err := db.SetState(ctx, employee, store.OpRead, seqs, all)
	return marked, c.Unread, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedDistinct(s []int64) []int64 {
	slices.Sort(s)
	return slices.Compact(s)
}

func sortInts(s []int64) { slices.Sort(s) }
