package store

import (
	"context"
	"time"
)

// Web Push state.
//
// A subscription carries its own cursor (Decided): the employee's seqs up to
// it have been decided for that subscription, so every copy is decided once
// per subscription, whatever the number of instances, and a new
// subscription starts at the employee's head (nothing old is pushed). Seqs
// are gapless and committed in order, so a cursor never passes a copy that
// commits later.
//
// QueuePushes decides the copies whose delay has passed and turns those
// that still qualify into jobs, rows of a queue that any instance may claim
// (ClaimPushes leases a job: a claim that is not completed, retried or
// released is taken again when its lease ends, so a crash loses nothing).

// PushSubscription is one browser's Web Push subscription.
type PushSubscription struct {
	ID       int64
	Employee int64
	// Endpoint is the push service URL the browser gave; unique across
	// employees (a browser has one per service worker).
	Endpoint string
	// P256DH is the browser's public key (a 65-byte uncompressed P-256
	// point) and Auth its 16-byte authentication secret (RFC 8291).
	P256DH    []byte
	Auth      []byte
	CreatedAt time.Time
}

// Streamed says that the copies From..To (inclusive) of an employee were
// written to an open stream, so they are not pushed.
type Streamed struct {
	Employee int64
	From, To int64
}

// PushJob is one push due to one subscription: a claimed row of the queue.
type PushJob struct {
	ID           int64
	Subscription PushSubscription
	// Seq is the recipient's id of the notification.
	Seq          int64
	Notification Notification
	// Attempts counts the claims so far, this one included.
	Attempts int
	// Expires is when the push is given up (its TTL).
	Expires time.Time
}

// PushOutcome is what became of a claimed push: the job is deleted, unless
// Retry is set (it is due again then); DropSubscription, when not zero,
// also deletes that subscription with its jobs.
type PushOutcome struct {
	Job              int64
	Retry            time.Time
	DropSubscription int64
}

// PushRule is what QueuePushes decides with.
type PushRule struct {
	// Now is the decision's clock; copies delivered at or before
	// Now-Delay are decided.
	Now   time.Time
	Delay time.Duration
	// TTL is how long a job is kept trying from Now.
	TTL time.Duration
	// Limit bounds the subscriptions decided in one call.
	Limit int
}

// Push keeps Web Push subscriptions and the queue of pushes.
type Push interface {
	// SavePushSubscription stores s for s.Employee: a known endpoint gets
	// the new keys (and moves to s.Employee if another employee had it);
	// beyond max subscriptions the employee's oldest by creation are
	// deleted. created is false when the endpoint was already the
	// employee's.
	SavePushSubscription(ctx context.Context, s PushSubscription, max int) (created bool, err error)
	// DeletePushSubscription deletes the employee's subscription to
	// endpoint; an unknown endpoint, or another employee's, is no error.
	DeletePushSubscription(ctx context.Context, employee int64, endpoint string) error
	// PushSubscriptions lists the employee's subscriptions, oldest first.
	PushSubscriptions(ctx context.Context, employee int64) ([]PushSubscription, error)
	// DropPushSubscription deletes a subscription by ID, with its jobs (the
	// push service said it is gone).
	DropPushSubscription(ctx context.Context, id int64) error
	// MarkStreamed records copies that were written to an open stream.
	// Only copies of employees with subscriptions are kept track of.
	MarkStreamed(ctx context.Context, marks []Streamed) error
	// QueuePushes decides, for up to r.Limit subscriptions, the copies
	// delivered by r.Now-r.Delay: a copy that is still unread and unseen,
	// was written to no stream, has not expired, whose type the employee
	// has not muted (unless it is required) and whose employee has not
	// turned push off becomes a job due now, one per subscription. It returns how many jobs it queued and
	// whether subscriptions were left over (call again).
	QueuePushes(ctx context.Context, r PushRule) (queued int, more bool, err error)
	// ClaimPushes takes up to limit jobs due at now, each leased until
	// now+lease.
	ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]PushJob, error)
	// CompletePush deletes a job (sent, or given up).
	CompletePush(ctx context.Context, id int64) error
	// RetryPush makes a job due again at at.
	RetryPush(ctx context.Context, id int64, at time.Time) error
	// SettlePushes records the outcomes of claimed pushes in one write.
	SettlePushes(ctx context.Context, outcomes []PushOutcome) error
	// PushQueueDepth counts the jobs waiting or in flight.
	PushQueueDepth(ctx context.Context) (int, error)
}
