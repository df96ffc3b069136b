package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestOwnPublishesDeliveredAsStored: an instance hands its own publishes to
// its streams from memory, without reading them back, and what it hands
// over is what another instance reads from the database and what a replay
// reads: the same contents, data byte for byte, the same created_at and
// expires_at. For a small fan-out (recipients in the payload), a large one
// (recipients read) and a publish with an Idempotency-Key (a transaction).
func TestOwnPublishesDeliveredAsStored(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	seedFast(t, u, 150)
	a, b := mustOpenURL(t, u), mustOpenURL(t, u)
	recA, recB := storetest.NewRecorder(), storetest.NewRecorder()
	listen(t, a, recA)
	listen(t, b, recB)

	ctx := context.Background()
	exp := time.Now().Add(time.Hour).Add(123456789 * time.Nanosecond)
	msgs := []struct {
		m    store.Message
		idem *store.Idempotency
	}{
		{m: store.Message{To: store.Targets{Employees: []int64{1, 2}}, Type: "build.failed", Title: "Build  «42»",
			Body: "line one\nline two", Data: []byte(`{"b": [1, 2],  "a":"\u00e9"}`), URL: "https://ci.example/b/42?x=1",
			ExpiresAt: &exp, Publisher: "ci"}},
		{m: store.Message{To: store.Targets{All: true}, Type: "all.hands", Title: "everyone", Publisher: "hr"}},
		{m: store.Message{To: store.Targets{Employees: []int64{1}}, Type: "keyed", Title: "with a key", Data: []byte(`{}`),
			Publisher: "svc"}, idem: &store.Idempotency{Owner: "svc", Key: "k-1", Hash: "h"}},
	}
	ids := make([]int64, len(msgs))
	for i, x := range msgs {
		res, err := a.Publish(ctx, x.m, x.idem)
		if err != nil {
			t.Fatalf("publish %q: %v", x.m.Title, err)
		}
		ids[i] = res.NotificationID
	}
	three := func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool { return len(d) >= len(msgs) }
	recA.Wait(t, "the publishing instance's deliveries", three)
	recB.Wait(t, "the other instance's deliveries", three)
	dA, dB := recA.Deliveries(), recB.Deliveries()
	if len(dA) != len(msgs) || len(dB) != len(msgs) {
		t.Fatalf("deliveries: %d here, %d on the other instance; want %d each", len(dA), len(dB), len(msgs))
	}
	for i := range msgs {
		na, nb := dA[i].Notification, dB[i].Notification
		if na.ID != ids[i] {
			t.Fatalf("delivery %d is notification %d, want %d (publish order)", i, na.ID, ids[i])
		}
		if !reflect.DeepEqual(na, nb) {
			t.Fatalf("notification %d from memory:\n%+v\nread by the other instance:\n%+v", na.ID, na, nb)
		}
		if len(dA[i].Recipients) != len(dB[i].Recipients) {
			t.Fatalf("notification %d: %d recipients here, %d there", na.ID, len(dA[i].Recipients), len(dB[i].Recipients))
		}
	}
	if string(dA[0].Notification.Data) != string(msgs[0].m.Data) {
		t.Fatalf("data %s, want as sent %s", dA[0].Notification.Data, msgs[0].m.Data)
	}
	items, err := a.Since(ctx, 1, 0, 10)
	if err != nil || len(items) != 3 {
		t.Fatalf("replay of employee 1: %d items, %v; want 3", len(items), err)
	}
	for i, want := range []int{0, 1, 2} {
		if got := items[i].Notification; !reflect.DeepEqual(got, dA[want].Notification) {
			t.Fatalf("replayed:\n%+v\ndelivered live:\n%+v", got, dA[want].Notification)
		}
	}
	if hits, misses := a.RecentCounts(); hits != 3 || misses != 0 {
		t.Fatalf("the publishing instance took %d from memory and read %d; want 3 and 0", hits, misses)
	}
	if hits, misses := b.RecentCounts(); hits != 0 || misses != 3 {
		t.Fatalf("the other instance took %d from memory and read %d; want 0 and 3", hits, misses)
	}
}
