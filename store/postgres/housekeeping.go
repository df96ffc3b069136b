package postgres

import (
	"context"
	"time"

	"github.com/corp/herald/store"
)

const (
	// housekeepingInterval is how often each listening instance deletes
	// expired idempotency keys and delivered ephemeral messages. Every
	// instance does it; the deletes are idempotent.
	housekeepingInterval = time.Minute
	// ephemeralKeep is how long a stored ephemeral message waits for the
	// listeners; one that is later than this loses it.
	ephemeralKeep = 5 * time.Minute
	// deleteChunk bounds one DELETE, so clean-up never holds many locks or
	// runs one long statement.
	deleteChunk = 5000
)

// housekeep cleans up every housekeepingInterval until ctx ends.
func (db *DB) housekeep(ctx context.Context) {
	t := time.NewTicker(housekeepingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := db.cleanUp(ctx); err != nil && ctx.Err() == nil {
				db.log.Warn("housekeeping failed; retrying later", "err", err)
			}
		}
	}
}

// cleanUp deletes expired idempotency keys and old ephemeral messages, in
// chunks.
func (db *DB) cleanUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := time.Now()
	for _, q := range []struct {
		sql    string
		cutoff time.Time
	}{
		{`DELETE FROM ephemeral_messages WHERE id = ANY(ARRAY(
			SELECT id FROM ephemeral_messages WHERE created_at < $1 LIMIT $2))`, t.Add(-ephemeralKeep)},
		{`DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM idempotency_keys WHERE created_at <= $1 LIMIT $2))`, t.Add(-store.IdempotencyTTL)},
	} {
		for {
			res, err := db.x.ExecContext(ctx, q.sql, q.cutoff, deleteChunk)
			if err != nil {
				return wrap(ctx, "clean up", err)
			}
			if n, _ := res.RowsAffected(); n < deleteChunk {
				break
			}
		}
	}
	return nil
}
