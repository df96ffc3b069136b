package postgres

import "context"

// Test hooks, compiled into the package's tests only.

// CleanUp runs one round of housekeeping now (a listening instance runs it
// every housekeepingInterval).
func (db *DB) CleanUp(ctx context.Context) error { return db.cleanUp(ctx) }

// EphemeralKeep is how long a stored ephemeral message is kept.
const EphemeralKeep = ephemeralKeep
