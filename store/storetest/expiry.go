package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// IdempotencyExpiry checks that an Idempotency-Key lives store.IdempotencyTTL
// and no longer, on a store seeded with employee 1. age moves every saved
// key's creation back by d (each dialect does it in its own SQL), so the
// test does not wait a day; keys reports how many keys are saved.
func IdempotencyExpiry(t *testing.T, st store.Store, age func(d time.Duration), keys func() int) {
	t.Helper()
	ctx := context.Background()
	msg := func(title string) store.Message {
		return store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: title}
	}
	idem := func(hash string) *store.Idempotency {
		return &store.Idempotency{Owner: "service:test", Key: "k", Hash: hash}
	}
	first, err := st.Publish(ctx, msg("first"), idem("h1"))
	if err != nil || first.Replayed {
		t.Fatalf("first publish: %+v, %v", first, err)
	}

	// A minute short of the TTL: still the first answer, still guarded.
	age(store.IdempotencyTTL - time.Minute)
	again, err := st.Publish(ctx, msg("first"), idem("h1"))
	if err != nil || !again.Replayed || again.NotificationID != first.NotificationID {
		t.Fatalf("retry within the TTL: %+v, %v; want the first answer replayed", again, err)
	}
	if _, err := st.Publish(ctx, msg("other"), idem("h2")); !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("other body within the TTL: %v, want ErrIdempotencyMismatch", err)
	}

	// Past the TTL: the key is free; the same key publishes anew.
	age(2 * time.Minute)
	if res, err := st.Replay(ctx, *idem("h1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replay after the TTL: %+v, %v; want ErrNotFound", res, err)
	}
	later, err := st.Publish(ctx, msg("other"), idem("h2"))
	if err != nil || later.Replayed || later.NotificationID == first.NotificationID {
		t.Fatalf("same key after the TTL: %+v, %v; want a new publish", later, err)
	}
	if head, _ := st.Head(ctx, 1); head != 2 {
		t.Fatalf("employee 1 has %d notifications, want 2 (first, then the one after the TTL)", head)
	}
	// And it is guarded again, with its new body.
	if res, err := st.Publish(ctx, msg("other"), idem("h2")); err != nil || !res.Replayed || res.NotificationID != later.NotificationID {
		t.Fatalf("retry of the new publish: %+v, %v", res, err)
	}
	if n := keys(); n != 1 {
		t.Fatalf("%d keys saved, want 1", n)
	}
}
