package store

import (
	"context"
	"strings"
	"time"
)

// The notification center: inbox state beyond read (seen, archived,
// deleted), counts, preferences, scheduling, expiry, withdrawal and
// retention.

// StateOp names a change of inbox state, as clients see it in the
// `state` event's "op".
type StateOp string

// The state operations.
const (
	OpRead      StateOp = "read"
	OpUnread    StateOp = "unread"
	OpSeen      StateOp = "seen"
	OpArchive   StateOp = "archive" // also marks read and seen
	OpUnarchive StateOp = "unarchive"
	OpDelete    StateOp = "delete" // gone for good; also a withdrawal
)

// StateOps lists every operation, in the order the API documents them.
var StateOps = []StateOp{OpRead, OpUnread, OpSeen, OpArchive, OpUnarchive, OpDelete}

// Counts are an employee's badge numbers. Both leave out archived,
// expired and not yet delivered items.
type Counts struct {
	Unread int
	Unseen int
}

// StateChange is a committed change to one employee's inbox, handed to
// every instance's sink so that every open stream of the employee learns
// it.
type StateChange struct {
	Employee int64
	Op       StateOp
	// Seqs are the items that changed; empty with All.
	Seqs []int64
	// All is set when the change named the whole inbox.
	All    bool
	Counts Counts
}

// Preferences are an employee's choices. The zero value is not the default:
// DefaultPreferences is (nothing muted, push on).
type Preferences struct {
	// Muted lists types ("build.failed") and prefixes ("marketing.*"): a
	// notification of a muted type is stored read and seen, is not
	// delivered live and is not pushed, unless it is Required.
	Muted []string
	// Push is false when the employee turned Web Push off.
	Push bool
}

// DefaultPreferences are the preferences of an employee who never set any.
func DefaultPreferences() Preferences { return Preferences{Muted: []string{}, Push: true} }

// MaxMuted bounds the patterns of one employee's Muted list.
const MaxMuted = 100

// Muted reports whether typ matches one of patterns: equal to a type, or
// starting with a prefix pattern's text before its "*" ("marketing.*"
// matches "marketing.weekly", not "marketing"). The SQL of both stores
// applies the same rule.
func Muted(patterns []string, typ string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(typ, prefix) {
				return true
			}
		} else if p == typ {
			return true
		}
	}
	return false
}

// Center is the notification center's part of the store.
type Center interface {
	// SetState applies op to the given seqs of the employee's own inbox
	// (or to all of it); seqs that are not theirs, expired or already in
	// the state are ignored. It returns how many items changed and the
	// counts after the change, and hands the change to the listening sinks
	// when something changed.
	SetState(ctx context.Context, employee int64, op StateOp, seqs []int64, all bool) (changed int, c Counts, err error)
	// Counts returns the employee's counts.
	Counts(ctx context.Context, employee int64) (Counts, error)
	// Preferences returns the employee's preferences (DefaultPreferences
	// when never set).
	Preferences(ctx context.Context, employee int64) (Preferences, error)
	// SetPreferences replaces them.
	SetPreferences(ctx context.Context, employee int64, p Preferences) error
	// Withdraw removes every recipient's copy, delivered or scheduled, of
	// notification id published by owner (Message.Owner), and hands an
	// OpDelete change per recipient to the sinks. ErrNotFound when there is
	// no such notification of that owner.
	Withdraw(ctx context.Context, owner string, id int64) error
	// DeliverDue delivers up to limit scheduled notifications whose time
	// has come (the copies get their seqs now, in commit order) and
	// returns how many it delivered. With several instances on one
	// database each notification is delivered by exactly one of them.
	DeliverDue(ctx context.Context, limit int) (int, error)
	// Sweep deletes, up to limit rows per kind, notifications whose copies
	// appeared before olderThan (none when olderThan is zero): created
	// before it and, when scheduled, due (DeliverAt) before it; copies that
	// expired before now, and idempotency keys older than IdempotencyTTL.
	// It returns how many rows it deleted, and how long its statements
	// held the database; callers repeat while it is limit or more.
	Sweep(ctx context.Context, olderThan time.Time, limit int) (SweepChunk, error)
}

// SweepChunk is what one Sweep did.
type SweepChunk struct {
	Rows int // rows deleted
	// Busy is how long the chunk's statements took, not counting the wait
	// for the database or a commit shared with publishes (on SQLite the
	// time the one writer spent on it, publishes waiting behind it).
	Busy time.Duration
}
