package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestHandleMixedBatch: one batch of notifications read by the listener
// that holds both kinds of notification payload, a small fan-out whose
// recipients travel inline and a large one whose recipients are read from
// the inbox, hands both to the sink, in order, each with its recipients.
// So does a batch of a large fan-out and an ephemeral message stored for
// being too large for a payload. The batches are handed to handle directly, so what it holds does not depend
// on how the listener's reads happen to group the notifications.
func TestHandleMixedBatch(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Seed(t, db, 2, 0)
	small, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "small"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	large, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{2}}, Type: "t", Title: "large"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := storetest.NewRecorder()
	w := &listenWork{db: db, sink: rec}
	w.handle(ctx, []*pq.Notification{
		{Extra: fmt.Sprintf("n%d 1:1", small.NotificationID)},
		{Extra: fmt.Sprintf("n%d", large.NotificationID)}, // no list: read from the inbox
	})
	var got []string
	for _, d := range rec.Deliveries() {
		got = append(got, fmt.Sprintf("%s%v", d.Notification.Title, d.Recipients))
	}
	if want := "[small[{1 1}] large[{2 1}]]"; fmt.Sprint(got) != want {
		t.Fatalf("delivered %v; want %s", got, want)
	}
	// A large fan-out and an ephemeral message too large for a payload
	// (stored in ephemeral_messages) in one batch.
	if _, err := db.PublishEphemeral(ctx, store.Message{To: store.Targets{Employees: []int64{2}}, Type: "t", Title: "stored", Body: strings.Repeat("x", maxPayload)}, nil); err != nil {
		t.Fatal(err)
	}
	var stored int64
	if err := db.x.GetContext(ctx, &stored, `SELECT max(id) FROM ephemeral_messages`); err != nil {
		t.Fatal(err)
	}
	w.handle(ctx, []*pq.Notification{
		{Extra: fmt.Sprintf("n%d", large.NotificationID)},
		{Extra: fmt.Sprintf("x%d", stored)},
	})
	if d := rec.Deliveries(); len(d) != 3 || d[2].Notification.Title != "large" {
		t.Fatalf("%d deliveries; want the large fan-out's again", len(d))
	}
	if e := rec.Ephemerals(); len(e) != 1 || e[0].Title != "stored" || len(e[0].Body) != maxPayload {
		t.Fatalf("ephemerals %d; want the stored one", len(e))
	}
	if w.owed {
		t.Fatal("a resync is owed after reads that succeeded")
	}
	// With none of its recipients connected here, a large fan-out is
	// delivered to nobody: the sink gets nothing.
	away := offline{storetest.NewRecorder()}
	(&listenWork{db: db, sink: away}).handle(ctx, []*pq.Notification{{Extra: fmt.Sprintf("n%d", large.NotificationID)}})
	if d := away.Deliveries(); len(d) != 0 {
		t.Fatalf("a sink with nobody connected got %d deliveries (first with %d recipients); want none", len(d), len(d[0].Recipients))
	}
}

// offline is a sink with no stream connected.
type offline struct{ *storetest.Recorder }

func (offline) Connected([]int64) []int64 { return nil }
