package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// handle hands one batch of notifications to the sink, in NOTIFY order
// (= commit order), after reading what the local streams need: one query
// for the contents, one for the recipients of large fan-outs, one for
// stored ephemeral messages (each only when needed). If the reads fail,
// the persisted notifications of the batch are skipped and a resync is
// owed: streams catch up from the store once it answers again.
func (w *listenWork) handle(ctx context.Context, batch []*pq.Notification) {
	msgs := make([]message, 0, len(batch))
	for _, n := range batch {
		if n == nil { // the connection was re-established: anything may be lost
			msgs = append(msgs, message{resync: true})
			continue
		}
		m, err := parseMessage(n.Extra)
		if err != nil {
			w.db.log.Warn("ignoring a notification Herald cannot read", "err", err)
			continue
		}
		msgs = append(msgs, m)
	}
	f := w.fetch(ctx, msgs)
	if f.err != nil {
		w.db.log.Warn("cannot read the notifications of a batch; streams catch up when the store answers",
			"notifications", len(msgs), "err", f.err)
		w.owed = true
	}
	for _, m := range msgs {
		switch {
		case m.resync:
			w.sink.Resync()
		case m.kind == kindNotification:
			n, ok := f.notifications[m.id]
			if !ok {
				continue // nobody here needs it, or it could not be read
			}
			rs := m.recipients
			if !m.inline {
				rs = f.recipients[m.id]
			}
			if len(rs) > 0 {
				w.sink.Deliver(store.Delivery{Notification: n, Recipients: rs})
			}
		case m.kind == kindEphemeral:
			w.sink.DeliverEphemeral(m.ephemeral)
		case m.kind == kindStoredEphemeral:
			if e, ok := f.ephemerals[m.id]; ok {
				w.sink.DeliverEphemeral(e)
			}
		case m.kind == kindEmployeeChanged:
			w.sink.EmployeeChanged(m.id, false)
		case m.kind == kindEmployeeDeleted:
			w.sink.EmployeeChanged(m.id, true)
		case m.kind == kindState:
			w.sink.State(m.state)
		}
	}
}

// fetched is what a batch needed from the database.
type fetched struct {
	notifications map[int64]store.Notification
	recipients    map[int64][]store.Recipient // large fan-outs: the connected recipients
	ephemerals    map[int64]store.Ephemeral
	err           error
}

// fetch reads what msgs need for the locally connected recipients. It
// narrows the inline recipient lists of msgs to those connected here.
func (w *listenWork) fetch(ctx context.Context, msgs []message) fetched {
	var need, large, stored []int64
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.resync:
		case m.kind == kindNotification && m.inline:
			m.recipients = connectedOnly(w.sink, m.recipients)
			if len(m.recipients) > 0 {
				need = append(need, m.id)
			}
		case m.kind == kindNotification:
			large = append(large, m.id)
		case m.kind == kindStoredEphemeral:
			stored = append(stored, m.id)
		}
	}
	f := fetched{}
	if len(need)+len(large)+len(stored) == 0 {
		return f
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if len(large) > 0 {
		if f.recipients, f.err = w.db.recipientsOf(ctx, large, w.sink); f.err != nil {
			return f
		}
		for id, rs := range f.recipients {
			if len(rs) > 0 {
				need = append(need, id)
			}
		}
	}
	if len(need) > 0 {
		f.notifications = make(map[int64]store.Notification, len(need))
		if w.db.recent != nil {
			need = w.db.recent.take(ctx, need, f.notifications)
		}
	}
	if len(need) > 0 {
		read, err := w.db.notificationsByID(ctx, need)
		if err != nil {
			f.notifications, f.err = nil, err
			return f
		}
		for id, n := range read {
			f.notifications[id] = n
		}
	}
	if len(stored) > 0 {
		f.ephemerals, f.err = w.db.storedEphemerals(ctx, stored)
	}
	return f
}

// connectedOnly keeps the recipients that have a stream on this instance.
func connectedOnly(sink store.Sink, rs []store.Recipient) []store.Recipient {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.Employee
	}
	here := sink.Connected(ids)
	if len(here) == len(rs) {
		return rs
	}
	set := make(map[int64]bool, len(here))
	for _, id := range here {
		set[id] = true
	}
	out := make([]store.Recipient, 0, len(here))
	for _, r := range rs {
		if set[r.Employee] {
			out = append(out, r)
		}
	}
	return out
}

// recipientsOf reads the recipients of notifications (large fan-outs) and
// keeps those connected here.
func (db *DB) recipientsOf(ctx context.Context, ids []int64, sink store.Sink) (map[int64][]store.Recipient, error) {
	rows, err := db.x.QueryContext(ctx, `SELECT notification_id, employee_id, seq FROM inbox
		WHERE notification_id = ANY($1::bigint[]) AND NOT muted`, pq.Int64Array(ids))
	if err != nil {
		return nil, wrap(ctx, "read recipients", err)
	}
	defer rows.Close()
	all := make(map[int64][]store.Recipient, len(ids))
	for rows.Next() {
		var n int64
		var r store.Recipient
		if err := rows.Scan(&n, &r.Employee, &r.Seq); err != nil {
			return nil, wrap(ctx, "read recipients", err)
		}
		all[n] = append(all[n], r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(ctx, "read recipients", err)
	}
	for n, rs := range all {
		all[n] = connectedOnly(sink, rs)
	}
	return all, nil
}

// notificationsByID reads the contents of notifications.
func (db *DB) notificationsByID(ctx context.Context, ids []int64) (map[int64]store.Notification, error) {
	var rows []struct {
		ID        int64          `db:"id"`
		Type      string         `db:"type"`
		Title     string         `db:"title"`
		Body      string         `db:"body"`
		Data      sql.NullString `db:"data"`
		CreatedAt time.Time      `db:"created_at"`
		URL       sql.NullString `db:"url"`
		ExpiresAt sql.NullTime   `db:"expires_at"`
	}
	err := db.x.SelectContext(ctx, &rows, `SELECT id, type, title, body, data, created_at, url, expires_at FROM notifications
		WHERE id = ANY($1::bigint[])`, pq.Int64Array(ids))
	if err != nil {
		return nil, wrap(ctx, "read notifications", err)
	}
	out := make(map[int64]store.Notification, len(rows))
	for _, r := range rows {
		n := store.Notification{ID: r.ID, Type: r.Type, Title: r.Title, Body: r.Body, CreatedAt: utc(r.CreatedAt),
			URL: r.URL.String, ExpiresAt: optTime(r.ExpiresAt)}
		if r.Data.Valid {
			n.Data = json.RawMessage(r.Data.String)
		}
		out[r.ID] = n
	}
	return out, nil
}

// storedEphemerals reads ephemeral messages too large for a payload.
func (db *DB) storedEphemerals(ctx context.Context, ids []int64) (map[int64]store.Ephemeral, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Payload string `db:"payload"`
	}
	err := db.x.SelectContext(ctx, &rows, `SELECT id, payload FROM ephemeral_messages WHERE id = ANY($1::bigint[])`, pq.Int64Array(ids))
	if err != nil {
		return nil, wrap(ctx, "read ephemeral messages", err)
	}
	out := make(map[int64]store.Ephemeral, len(rows))
	for _, r := range rows {
		var w ephemeralWire
		if err := json.Unmarshal([]byte(r.Payload), &w); err != nil {
			db.log.Warn("ignoring an unreadable ephemeral message", "id", r.ID, "err", err)
			continue
		}
		out[r.ID] = w.ephemeral()
	}
	return out, nil
}
