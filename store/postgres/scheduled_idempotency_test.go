package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestScheduledIdempotent: a scheduled publish retried with its
// Idempotency-Key gets the first answer and schedules nothing more; the
// key reused for another request is refused.
func TestScheduledIdempotent(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 2, 0)
	x := rawDB(t, u)
	ctx := context.Background()
	at := time.Now().Add(time.Hour)
	m := store.Message{To: store.Targets{Employees: []int64{1, 2}}, Type: "t", Title: "later", DeliverAt: &at}
	idem := &store.Idempotency{Owner: "service:test", Key: "k", Hash: "h"}
	first, err := db.Publish(ctx, m, idem)
	if err != nil || first.NotificationID == 0 || first.Recipients != 2 || first.Replayed {
		t.Fatalf("first scheduled publish: %+v, %v", first, err)
	}
	again, err := db.Publish(ctx, m, idem)
	if err != nil || !again.Replayed || again.NotificationID != first.NotificationID || again.Recipients != 2 {
		t.Fatalf("retry with the key: %+v, %v; want the first answer (notification %d, 2 recipients) replayed", again, err, first.NotificationID)
	}
	if n := count(t, x, "notifications"); n != 1 {
		t.Fatalf("%d notifications after a retry, want 1", n)
	}
	if n := count(t, x, "scheduled"); n != 2 {
		t.Fatalf("%d scheduled copies after a retry, want 2", n)
	}
	other := *idem
	other.Hash = "another request"
	if _, err := db.Publish(ctx, m, &other); !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("key reused for another request: %v, want ErrIdempotencyMismatch", err)
	}
}
