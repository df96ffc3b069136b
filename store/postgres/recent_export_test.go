package postgres

// RecentCounts returns how many notifications the listener took from what
// this instance had just published, and how many it had to read.
func (db *DB) RecentCounts() (hits, misses int64) {
	db.recent.mu.Lock()
	defer db.recent.mu.Unlock()
	return db.recent.hits, db.recent.misses
}

// RecentMax is how many just-published notifications an instance keeps.
const RecentMax = recentMax
