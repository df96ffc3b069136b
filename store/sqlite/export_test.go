package sqlite

import (
	"testing"
	"time"
)

// Test hooks, compiled into the package's tests only.

// SetAfterCommit makes the writer call f between each batch's commit and its
// deliveries, with the titles of the batch's requests in order. Set it
// before the first publish the hook must see.
func (db *DB) SetAfterCommit(f func(titles []string)) { db.afterCommit = f }

// SetBeforeCommit makes the writer call f before each batch commits, with
// the transaction's synchronous level (1 NORMAL, 2 FULL) and how many of
// the batch's requests are marks and not.
func (db *DB) SetBeforeCommit(f func(level, marks, others int)) { db.beforeCommit = f }

// WriteLocked reports whether the store's write lock (writeMu, which every
// write transaction and the sink calls after it hold) is held now. It
// takes the lock if it is free, and lets it go at once.
func (db *DB) WriteLocked() bool {
	if db.writeMu.TryLock() {
		db.writeMu.Unlock()
		return false
	}
	return true
}

// SetCheckpointEvery sets how often the listener checkpoints the WAL, and
// how often it completes a checkpoint so that the WAL restarts. Set them
// before Listen.
func (db *DB) SetCheckpointEvery(every, restart time.Duration) {
	db.checkpointEvery, db.restartEvery = every, restart
}

// SetWALLimit sets the WAL size past which the writer truncates it.
func (db *DB) SetWALLimit(bytes int64) { db.walLimit = bytes }

// Waiting returns how many requests wait in the writer's queue.
func (db *DB) Waiting() int { return len(db.w.reqs) }

// MaxWaiting is the bound of the writer's queue.
const MaxWaiting = maxWaiting

// Size returns the database's size in bytes, pages in the WAL included.
func (db *DB) Size(t testing.TB) int64 {
	t.Helper()
	var pages, pageSize int64
	if err := db.x.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if err := db.x.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	return pages * pageSize
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }
