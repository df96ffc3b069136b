package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// publishBatchSQL stores a batch of notifications and sends their NOTIFYs:
// the function herald_publish_batch (migrations/00003_publish_function.sql
// says how), one statement and, on its own, one transaction.
const publishBatchSQL = `SELECT k, id, recipients, known_ids, known_emails, notified FROM herald_publish_batch($1, $2, $3, $4)`

// publishIDsSQL does what publishBatchSQL does for a small batch whose
// messages all name their recipients by employee ID only, the commonest
// publish: the same writes and NOTIFYs in about 55% of the database's time
// for one message, 85% for four (herald_publish_ids,
// migrations/00013_publish_ids_function.sql). It writes message by
// message, so from about eight messages on the one statement of
// herald_publish_batch is quicker (2.2 against 2.9 ms for 16, 6.5 against
// 9.8 ms for 64); idsBatchMax keeps it to the batches it is quicker for.
const (
	publishIDsSQL = `SELECT k, id, recipients, known_ids, known_emails, notified FROM herald_publish_ids($1, $2, $3, $4)`
	idsBatchMax   = 4
)

// inlineRecipients is the largest fan-out whose recipients travel in the
// NOTIFY payload: at most 100 × "id:seq," (40 bytes with the largest int64s)
// stays far below the 8,000-byte limit. Listeners read larger ones from
// inbox.
const inlineRecipients = 100

// batchMessage is one message of publishBatchSQL's JSON input. Data travels
// as a string so PostgreSQL stores it byte for byte as sent.
type batchMessage struct {
	Type      string     `json:"ty"`
	Title     string     `json:"ti"`
	Body      string     `json:"bo"`
	Data      *string    `json:"da"`
	Publisher string     `json:"pu"`
	All       bool       `json:"all"`
	IDs       []int64    `json:"ids"`
	Emails    []string   `json:"em"`
	Roles     []string   `json:"ro"`
	URL       string     `json:"ur,omitempty"`
	ExpiresAt *time.Time `json:"ex,omitempty"`
	Required  bool       `json:"rq,omitempty"`
	Owner     string     `json:"ow,omitempty"`
}

// publishBatch stores msgs (all or nothing) and returns their answers in
// order, and the time it gave them (created_at).
func publishBatch(ctx context.Context, q querier, msgs []store.Message) ([]store.PublishResult, time.Time, error) {
	in := make([]batchMessage, len(msgs))
	targets := make([]targetArgs, len(msgs))
	for i, m := range msgs {
		ta := targetsOf(m.To)
		targets[i] = ta
		in[i] = batchMessage{Type: m.Type, Title: m.Title, Body: m.Body, Publisher: m.Publisher,
			All: ta.all, IDs: ta.ids, Emails: ta.emails, Roles: ta.roles,
			URL: m.URL, ExpiresAt: millis(m.ExpiresAt), Required: m.Required, Owner: m.Owner}
		if len(m.Data) > 0 {
			d := string(m.Data)
			in[i].Data = &d
		}
	}
	js, err := json.Marshal(in)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("encode batch: %w", err)
	}
	var rows []struct {
		K           int            `db:"k"`
		ID          int64          `db:"id"`
		Recipients  int            `db:"recipients"`
		KnownIDs    pq.Int64Array  `db:"known_ids"`
		KnownEmails pq.StringArray `db:"known_emails"`
		Notified    sql.NullBool   `db:"notified"`
	}
	at := now()
	if err := q.SelectContext(ctx, &rows, batchQuery(targets), string(js), at, channel, inlineRecipients); err != nil {
		return nil, at, fmt.Errorf("store %d notifications: %w", len(msgs), err)
	}
	if len(rows) != len(msgs) {
		return nil, at, fmt.Errorf("store %d notifications: %d answers", len(msgs), len(rows))
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
	return out, at, nil
}

// batchQuery is the statement for a batch with these targets:
// publishIDsSQL for up to idsBatchMax messages to employee IDs only,
// publishBatchSQL for anything else.
func batchQuery(targets []targetArgs) string {
	if len(targets) > idsBatchMax {
		return publishBatchSQL
	}
	for _, ta := range targets {
		if ta.all || len(ta.emails) > 0 || len(ta.roles) > 0 {
			return publishBatchSQL
		}
	}
	return publishIDsSQL
}

// stored is the notification publishBatch stored for m as id at at, as the
// listener would read it back (notificationsByID).
func stored(id int64, m store.Message, at time.Time) store.Notification {
	n := store.Notification{ID: id, Type: m.Type, Title: m.Title, Body: m.Body, CreatedAt: at,
		URL: m.URL, ExpiresAt: millis(m.ExpiresAt)}
	if len(m.Data) > 0 {
		n.Data = m.Data
	}
	return n
}
