package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// publishBatchSQL stores a batch of notifications and sends their NOTIFYs in
// one statement. On its own it is also its own transaction.
//
//   - msg unpacks the batch ($1, a JSON array) with each message's position k.
//   - pairs resolves every message's targets to (k, employee), through the
//     indexes (ids, emails, the roles' GIN index; "all" scans).
//   - locked locks every recipient's row in id order. Every publish takes its
//     locks in the same order, so batches with overlapping recipients wait
//     for each other and never deadlock; the locks are held to commit, so an
//     employee's seqs commit in order. FOR NO KEY UPDATE is the lock the
//     UPDATE takes anyway: taking it first, in order, fixes the order.
//   - bumped adds to each recipient's last_seq the number of its copies in
//     the batch; seqs numbers the copies in message order from the old
//     value, so within a batch, too, seq order is message order.
//   - nids draws the notification ids; notes and ins store the
//     notifications and the copies.
//   - The result has a row per message, in order, with what the publisher's
//     answer needs. Its pg_notify calls run in that order (PostgreSQL
//     evaluates volatile output expressions after ORDER BY) and reach the
//     listeners at commit only; a message that reached nobody sends none.
//     A payload carries the notification id and, for up to $4 recipients,
//     "employee:seq" pairs (payload.go).
const publishBatchSQL = `
WITH msg AS MATERIALIZED (
	SELECT t.k, t.m->>'ty' AS type, t.m->>'ti' AS title, t.m->>'bo' AS body, (t.m->>'da')::json AS data,
		t.m->>'pu' AS publisher, (t.m->>'all')::boolean AS all_,
		ARRAY(SELECT json_array_elements_text(t.m->'ids')::bigint) AS ids,
		ARRAY(SELECT json_array_elements_text(t.m->'em')) AS emails,
		ARRAY(SELECT json_array_elements_text(t.m->'ro')) AS roles
	FROM json_array_elements($1::json) WITH ORDINALITY AS t(m, k)
),
pairs AS MATERIALIZED (
	SELECT DISTINCT k, id FROM (
		SELECT msg.k, e.id FROM msg JOIN employees e ON e.id = ANY(msg.ids)
		UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.email = ANY(msg.emails)
		UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.roles && msg.roles
		UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON msg.all_
	) p
),
locked AS MATERIALIZED (
	SELECT id FROM employees WHERE id IN (SELECT id FROM pairs) ORDER BY id FOR NO KEY UPDATE
),
counts AS (SELECT id, count(*) AS c FROM pairs GROUP BY id),
bumped AS (
	UPDATE employees e SET last_seq = e.last_seq + counts.c
	FROM counts, locked WHERE e.id = counts.id AND locked.id = counts.id
	RETURNING e.id, e.last_seq - counts.c AS base
),
seqs AS (
	SELECT p.k, p.id, b.base + row_number() OVER (PARTITION BY p.id ORDER BY p.k) AS seq
	FROM pairs p JOIN bumped b ON b.id = p.id
),
per_msg AS (
	SELECT k, count(*) AS n, CASE WHEN count(*) <= $4 THEN string_agg(id || ':' || seq, ',') END AS refs
	FROM seqs GROUP BY k
),
nids AS MATERIALIZED (
	SELECT k, nextval(pg_get_serial_sequence('notifications', 'id')) AS id FROM msg ORDER BY k
),
notes AS (
	INSERT INTO notifications (id, type, title, body, data, publisher, recipients, created_at)
	OVERRIDING SYSTEM VALUE
	SELECT nids.id, msg.type, msg.title, msg.body, msg.data, msg.publisher, coalesce(per_msg.n, 0), $2
	FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
),
ins AS (
	INSERT INTO inbox (employee_id, seq, notification_id)
	SELECT seqs.id, seqs.seq, nids.id FROM seqs JOIN nids USING (k)
)
SELECT msg.k, nids.id, coalesce(per_msg.n, 0) AS recipients,
	ARRAY(SELECT e.id FROM employees e WHERE e.id = ANY(msg.ids)) AS known_ids,
	ARRAY(SELECT e.email FROM employees e WHERE e.email = ANY(msg.emails)) AS known_emails,
	CASE WHEN per_msg.n > 0 THEN pg_notify($3, 'n' || nids.id || coalesce(' ' || per_msg.refs, '')) IS NOT NULL
	END AS notified
FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
ORDER BY msg.k`

// inlineRecipients is the largest fan-out whose recipients travel in the
// NOTIFY payload: at most 100 × "id:seq," (40 bytes with the largest int64s)
// stays far below the 8,000-byte limit. Listeners read larger ones from
// inbox.
const inlineRecipients = 100

// batchMessage is one message of publishBatchSQL's JSON input. Data travels
// as a string so PostgreSQL stores it byte for byte as sent.
type batchMessage struct {
	Type      string   `json:"ty"`
	Title     string   `json:"ti"`
	Body      string   `json:"bo"`
	Data      *string  `json:"da"`
	Publisher string   `json:"pu"`
	All       bool     `json:"all"`
	IDs       []int64  `json:"ids"`
	Emails    []string `json:"em"`
	Roles     []string `json:"ro"`
}

// publishBatch stores msgs (all or nothing) and returns their answers in order.
func publishBatch(ctx context.Context, q querier, msgs []store.Message) ([]store.PublishResult, error) {
	in := make([]batchMessage, len(msgs))
	targets := make([]targetArgs, len(msgs))
	for i, m := range msgs {
		ta := targetsOf(m.To)
		targets[i] = ta
		in[i] = batchMessage{Type: m.Type, Title: m.Title, Body: m.Body, Publisher: m.Publisher,
			All: ta.all, IDs: ta.ids, Emails: ta.emails, Roles: ta.roles}
		if len(m.Data) > 0 {
			d := string(m.Data)
			in[i].Data = &d
		}
	}
	js, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	var rows []struct {
		K           int            `db:"k"`
		ID          int64          `db:"id"`
		Recipients  int            `db:"recipients"`
		KnownIDs    pq.Int64Array  `db:"known_ids"`
		KnownEmails pq.StringArray `db:"known_emails"`
		Notified    sql.NullBool   `db:"notified"`
	}
	if err := q.SelectContext(ctx, &rows, publishBatchSQL, string(js), now(), channel, inlineRecipients); err != nil {
		return nil, fmt.Errorf("store %d notifications: %w", len(msgs), err)
	}
	if len(rows) != len(msgs) {
		return nil, fmt.Errorf("store %d notifications: %d answers", len(msgs), len(rows))
	}
	out := make([]store.PublishResult, len(msgs))
	for _, r := range rows {
		i := r.K - 1
		out[i] = store.PublishResult{
			NotificationID: r.ID,
			Recipients:     r.Recipients,
			Unknown:        targets[i].unknown(msgs[i].To, r.KnownIDs, r.KnownEmails),
		}
	}
	return out, nil
}
