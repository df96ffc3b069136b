package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
)

// Publish stores one copy per recipient and notifies every instance at
// commit. Concurrent publishes are written together, in one statement (see
// batch.go).
func (db *DB) Publish(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	if m.DeliverAt != nil && m.DeliverAt.After(now()) {
		return db.schedule(ctx, m, idem)
	}
	return db.batcher.publish(ctx, m, idem)
}

// PublishEphemeral resolves m's targets and notifies every instance, which
// hands m to its matching streams. Nothing is stored but, with an
// Idempotency-Key, the key and its answer, and a message too large for a
// NOTIFY payload (it waits in ephemeral_messages for a few minutes).
func (db *DB) PublishEphemeral(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	if idem != nil {
		// In the transaction, a NOTIFY is sent at commit only.
		return db.idempotent(ctx, "publish ephemeral", idem, func(tx *sqlx.Tx) (store.PublishResult, error) {
			return sendEphemeral(ctx, tx, m)
		})
	}
	conn, err := db.x.Connx(ctx)
	if err != nil {
		return store.PublishResult{}, wrap(ctx, "publish ephemeral", err)
	}
	defer conn.Close()
	res, err := sendEphemeral(ctx, conn, m)
	var sent notifyError
	if errors.As(err, &sent) {
		err = inFlight(sent.err)
	}
	return res, wrap(ctx, "publish ephemeral", err)
}

// notifyError is the failure of an ephemeral message's NOTIFY, which may
// have reached the server, unlike a failure to resolve its targets.
type notifyError struct{ err error }

func (e notifyError) Error() string { return "notify: " + e.err.Error() }
func (e notifyError) Unwrap() error { return e.err }

// resolveTargets reads the employees ta names, by id, with the emails of
// those that have one (to report which targets were unknown).
func resolveTargets(ctx context.Context, q querier, ta targetArgs) (ids []int64, emails []string, err error) {
	var rows []struct {
		ID    int64          `db:"id"`
		Email sql.NullString `db:"email"`
	}
	err = q.SelectContext(ctx, &rows, `SELECT id, email FROM employees
		WHERE $1 OR id = ANY($2::bigint[]) OR email = ANY($3::text[]) OR roles && $4::text[] ORDER BY id`,
		ta.all, ta.ids, ta.emails, ta.roles)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", ta, err)
	}
	ids = make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		if r.Email.Valid {
			emails = append(emails, r.Email.String)
		}
	}
	return ids, emails, nil
}

func sendEphemeral(ctx context.Context, q querier, m store.Message) (store.PublishResult, error) {
	ta := targetsOf(m.To)
	ids, emails, err := resolveTargets(ctx, q, ta)
	if err != nil {
		return store.PublishResult{}, err
	}
	js, err := json.Marshal(wireOf(store.EphemeralFor(m, ids, now())))
	if err != nil {
		return store.PublishResult{}, fmt.Errorf("encode ephemeral: %w", err)
	}
	if 1+len(js) <= maxPayload {
		_, err = q.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, kindEphemeral+string(js))
	} else {
		_, err = q.ExecContext(ctx, `WITH x AS (INSERT INTO ephemeral_messages (payload) VALUES ($2) RETURNING id)
			SELECT pg_notify($1, 'x' || x.id) FROM x`, channel, string(js))
	}
	if err != nil {
		return store.PublishResult{}, notifyError{err}
	}
	return store.PublishResult{Recipients: len(ids), Unknown: ta.unknown(m.To, ids, emails)}, nil
}
