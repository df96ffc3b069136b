package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// writeBatch stores reqs (all or nothing) and sets each request's answer.
// Without Idempotency-Keys it is one statement. With keys it is one
// transaction that first claims the keys: a request whose key already holds
// an answer gets that answer (or ErrIdempotencyMismatch) and publishes
// nothing. The returned error is the whole batch's; it carries
// store.ErrOutcomeUnknown when the statement or the commit was sent and
// no answer came back (see inFlight). Before that, nothing was written.
func (db *DB) writeBatch(ctx context.Context, reqs []*publishRequest) error {
	keyed := false
	for _, r := range reqs {
		keyed = keyed || r.idem != nil
	}
	conn, err := db.x.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !keyed {
		return inFlight(publishRequests(ctx, conn, reqs, db.recent))
	}
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	fresh, err := claimKeys(ctx, tx, reqs)
	if err != nil {
		return err
	}
	if err := publishRequests(ctx, tx, fresh, db.recent); err != nil {
		return err
	}
	if err := saveKeys(ctx, tx, fresh); err != nil {
		return err
	}
	return inFlight(tx.Commit())
}

// publishRequests runs publishBatch for reqs and sets their answers. What
// it stored goes into recent for the listener (see recentNotes), the batch
// marked in flight until then; in a transaction that is before the
// commit, and a batch rolled back leaves entries no NOTIFY asks for, which
// age out.
func publishRequests(ctx context.Context, q querier, reqs []*publishRequest, recent *recentNotes) error {
	if len(reqs) == 0 {
		return nil
	}
	msgs := make([]store.Message, len(reqs))
	for i, r := range reqs {
		msgs[i] = r.m
	}
	if recent != nil {
		defer recent.end(recent.begin())
	}
	res, at, err := publishBatch(ctx, q, msgs)
	if err != nil {
		return err
	}
	for i, r := range reqs {
		r.res = res[i]
		if recent != nil && res[i].NotificationID > 0 && res[i].Recipients > 0 {
			recent.put(stored(res[i].NotificationID, r.m, at))
		}
	}
	return nil
}

// idempotent runs fn in a transaction that first claims idem's key, like
// writeBatch does for publishes (ephemeral messages use it).
func (db *DB) idempotent(ctx context.Context, op string, idem *store.Idempotency, fn func(*sqlx.Tx) (store.PublishResult, error)) (store.PublishResult, error) {
	ctx, cancel := context.WithTimeout(ctx, db.opts.callTimeout)
	defer cancel()
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return store.PublishResult{}, wrap(ctx, op, err)
	}
	defer tx.Rollback()
	r := &publishRequest{idem: idem}
	fresh, err := claimKeys(ctx, tx, []*publishRequest{r})
	if err != nil || len(fresh) == 0 {
		return r.res, wrap(ctx, op, errors.Join(err, r.err))
	}
	if r.res, err = fn(tx); err != nil {
		return store.PublishResult{}, wrap(ctx, op, err)
	}
	if err := saveKeys(ctx, tx, fresh); err != nil {
		return store.PublishResult{}, wrap(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return store.PublishResult{}, wrap(ctx, op+": commit", inFlight(err))
	}
	return r.res, nil
}

// claimKeys inserts the Idempotency-Keys of reqs, or takes over expired
// ones, and returns the requests that may publish: those without a key and
// those whose key it claimed. The others get their key's answer (Replayed)
// or ErrIdempotencyMismatch. A key that another transaction holds
// uncommitted makes the claim wait for it (the unique index): concurrent
// retries never publish twice. Keys are claimed in (owner, key) order, and
// before any employee row is locked, so batches cannot deadlock on them.
func claimKeys(ctx context.Context, tx *sqlx.Tx, reqs []*publishRequest) ([]*publishRequest, error) {
	var owners, keys, hashes pq.StringArray
	for _, r := range reqs {
		if r.idem != nil {
			owners, keys, hashes = append(owners, r.idem.Owner), append(keys, r.idem.Key), append(hashes, r.idem.Hash)
		}
	}
	t := now()
	var claimed []struct {
		Owner string `db:"owner"`
		Key   string `db:"key"`
	}
	err := tx.SelectContext(ctx, &claimed, `
		INSERT INTO idempotency_keys (owner, key, request_hash, created_at)
		SELECT o, k, h, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(o, k, h) ORDER BY o, k
		ON CONFLICT (owner, key) DO UPDATE SET request_hash = excluded.request_hash, result = NULL,
			created_at = excluded.created_at
		WHERE idempotency_keys.created_at <= $5
		RETURNING owner, key`, owners, keys, hashes, t, t.Add(-store.IdempotencyTTL))
	if err != nil {
		return nil, fmt.Errorf("claim idempotency keys: %w", err)
	}
	mine := make(map[store.Idempotency]bool, len(claimed))
	for _, c := range claimed {
		mine[store.Idempotency{Owner: c.Owner, Key: c.Key}] = true
	}
	var fresh, answered []*publishRequest
	for _, r := range reqs {
		if r.idem == nil || mine[store.Idempotency{Owner: r.idem.Owner, Key: r.idem.Key}] {
			fresh = append(fresh, r)
		} else {
			answered = append(answered, r)
		}
	}
	if len(answered) > 0 {
		if err := replay(ctx, tx, answered); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

// replay sets the saved answers of reqs, whose keys are taken.
func replay(ctx context.Context, tx *sqlx.Tx, reqs []*publishRequest) error {
	var owners, keys pq.StringArray
	for _, r := range reqs {
		owners, keys = append(owners, r.idem.Owner), append(keys, r.idem.Key)
	}
	var rows []struct {
		Owner  string         `db:"owner"`
		Key    string         `db:"key"`
		Hash   string         `db:"request_hash"`
		Result sql.NullString `db:"result"`
	}
	err := tx.SelectContext(ctx, &rows, `SELECT owner, key, request_hash, result FROM idempotency_keys
		WHERE (owner, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, owners, keys)
	if err != nil {
		return fmt.Errorf("read idempotency keys: %w", err)
	}
	type answer struct{ hash, result string }
	saved := make(map[store.Idempotency]answer, len(rows))
	for _, row := range rows {
		if row.Result.Valid {
			saved[store.Idempotency{Owner: row.Owner, Key: row.Key}] = answer{row.Hash, row.Result.String}
		}
	}
	for _, r := range reqs {
		s, ok := saved[store.Idempotency{Owner: r.idem.Owner, Key: r.idem.Key}]
		switch {
		case !ok:
			// Only a concurrent clean-up of an expired key can get here.
			r.err = fmt.Errorf("idempotency key changed meanwhile: %w", store.ErrUnavailable)
		case s.hash != r.idem.Hash:
			r.err = store.ErrIdempotencyMismatch
		default:
			r.res, r.err = store.DecodeResult(s.result)
		}
	}
	return nil
}

// saveKeys records the answers of the requests that claimed their keys.
func saveKeys(ctx context.Context, tx *sqlx.Tx, reqs []*publishRequest) error {
	var owners, keys, results pq.StringArray
	for _, r := range reqs {
		if r.idem != nil {
			owners, keys, results = append(owners, r.idem.Owner), append(keys, r.idem.Key), append(results, store.EncodeResult(r.res))
		}
	}
	if len(owners) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys i SET result = t.r
		FROM unnest($1::text[], $2::text[], $3::text[]) AS t(o, k, r) WHERE i.owner = t.o AND i.key = t.k`,
		owners, keys, results)
	if err != nil {
		return fmt.Errorf("save idempotency keys: %w", err)
	}
	return nil
}

// Replay returns the saved answer of idem's key and writes nothing. A key
// claimed by a publish not yet committed is not seen: ErrNotFound.
func (db *DB) Replay(ctx context.Context, idem store.Idempotency) (store.PublishResult, error) {
	ctx, cancel := context.WithTimeout(ctx, db.opts.callTimeout)
	defer cancel()
	var row struct {
		Hash   string         `db:"request_hash"`
		Result sql.NullString `db:"result"`
	}
	err := db.x.GetContext(ctx, &row, `SELECT request_hash, result FROM idempotency_keys
		WHERE owner = $1 AND key = $2 AND created_at > $3`, idem.Owner, idem.Key, now().Add(-store.IdempotencyTTL))
	switch {
	case err != nil:
		return store.PublishResult{}, wrap(ctx, "replay", noRows(err))
	case !row.Result.Valid:
		return store.PublishResult{}, wrap(ctx, "replay", store.ErrNotFound)
	case row.Hash != idem.Hash:
		return store.PublishResult{}, wrap(ctx, "replay", store.ErrIdempotencyMismatch)
	}
	res, err := store.DecodeResult(row.Result.String)
	return res, wrap(ctx, "replay", err)
}
