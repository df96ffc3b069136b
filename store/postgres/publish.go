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
// commit. Concurrent publishes are batched into one statement (see
// batch.go); with an Idempotency-Key a publish runs in its own transaction.
func (db *DB) Publish(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	if idem == nil {
		return db.batcher.publish(ctx, m)
	}
	return db.idempotent(ctx, "publish", idem, func(tx *sqlx.Tx) (store.PublishResult, error) {
		res, err := publishBatch(ctx, tx, []store.Message{m})
		if err != nil {
			return store.PublishResult{}, err
		}
		return res[0], nil
	})
}

// PublishEphemeral resolves m's targets and notifies every instance, which
// hands m to its matching streams. Nothing is stored but, with an
// Idempotency-Key, the key and its answer, and a message too large for a
// NOTIFY payload (it waits in ephemeral_messages for a few minutes).
func (db *DB) PublishEphemeral(ctx context.Context, m store.Message, idem *store.Idempotency) (store.PublishResult, error) {
	if idem == nil {
		res, err := sendEphemeral(ctx, db.x, m)
		return res, wrap(ctx, "publish ephemeral", err)
	}
	return db.idempotent(ctx, "publish ephemeral", idem, func(tx *sqlx.Tx) (store.PublishResult, error) {
		return sendEphemeral(ctx, tx, m)
	})
}

func sendEphemeral(ctx context.Context, q querier, m store.Message) (store.PublishResult, error) {
	ta := targetsOf(m.To)
	var rows []struct {
		ID    int64          `db:"id"`
		Email sql.NullString `db:"email"`
	}
	err := q.SelectContext(ctx, &rows, `SELECT id, email FROM employees
		WHERE $1 OR id = ANY($2::bigint[]) OR email = ANY($3::text[]) OR roles && $4::text[] ORDER BY id`,
		ta.all, ta.ids, ta.emails, ta.roles)
	if err != nil {
		return store.PublishResult{}, fmt.Errorf("resolve %s: %w", ta, err)
	}
	ids := make([]int64, len(rows))
	var emails []string
	for i, r := range rows {
		ids[i] = r.ID
		if r.Email.Valid {
			emails = append(emails, r.Email.String)
		}
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
		return store.PublishResult{}, fmt.Errorf("notify: %w", err)
	}
	return store.PublishResult{Recipients: len(ids), Unknown: ta.unknown(m.To, ids, emails)}, nil
}

// idempotent runs fn in a transaction that first claims idem's key: a new
// (or expired) key is inserted and fn runs; a key already answered returns
// that answer, marked Replayed, and fn does not run. A concurrent retry with
// the same key waits on the key's unique index until the first commits (or
// rolls back), then reads its answer: retries never publish twice.
func (db *DB) idempotent(ctx context.Context, op string, idem *store.Idempotency, fn func(*sqlx.Tx) (store.PublishResult, error)) (store.PublishResult, error) {
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return store.PublishResult{}, wrap(ctx, op, err)
	}
	defer tx.Rollback()
	saved, found, err := claimKey(ctx, tx, idem)
	if err != nil || found {
		return saved, wrap(ctx, op, err)
	}
	res, err := fn(tx)
	if err != nil {
		return store.PublishResult{}, wrap(ctx, op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET result = $3 WHERE owner = $1 AND key = $2`,
		idem.Owner, idem.Key, store.EncodeResult(res)); err != nil {
		return store.PublishResult{}, wrap(ctx, op+": save idempotency key", err)
	}
	if err := tx.Commit(); err != nil {
		return store.PublishResult{}, wrap(ctx, op+": commit", err)
	}
	return res, nil
}

// claimKey inserts idem's key, or takes over an expired one. found is true
// when the key holds a live answer, which is returned.
func claimKey(ctx context.Context, tx *sqlx.Tx, idem *store.Idempotency) (store.PublishResult, bool, error) {
	t := now()
	var claimed []bool
	err := tx.SelectContext(ctx, &claimed, `
		INSERT INTO idempotency_keys (owner, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner, key) DO UPDATE SET request_hash = excluded.request_hash, result = NULL,
			created_at = excluded.created_at
		WHERE idempotency_keys.created_at <= $5
		RETURNING true`, idem.Owner, idem.Key, idem.Hash, t, t.Add(-store.IdempotencyTTL))
	if err != nil {
		return store.PublishResult{}, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	if len(claimed) > 0 {
		return store.PublishResult{}, false, nil
	}
	var row struct {
		Hash   string         `db:"request_hash"`
		Result sql.NullString `db:"result"`
	}
	err = tx.GetContext(ctx, &row, `SELECT request_hash, result FROM idempotency_keys WHERE owner = $1 AND key = $2`, idem.Owner, idem.Key)
	if err != nil || !row.Result.Valid {
		// The key vanished or has no answer between two statements: only a
		// concurrent clean-up can do that. The caller may retry.
		return store.PublishResult{}, false, fmt.Errorf("read idempotency key: %w", errors.Join(store.ErrUnavailable, err))
	}
	if row.Hash != idem.Hash {
		return store.PublishResult{}, true, store.ErrIdempotencyMismatch
	}
	res, err := store.DecodeResult(row.Result.String)
	return res, true, err
}
