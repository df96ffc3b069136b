package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestBatchRunIsolatesFailure: when one publish of a batch makes the
// batch's statement fail (data PostgreSQL refuses as JSON), the others are
// written one by one and stored once each; only that one fails. The batch
// is handed to run directly, so it holds all three requests whatever the
// timing of the publishers.
func TestBatchRunIsolatesFailure(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Seed(t, db, 1, 0)
	var reqs []*publishRequest
	for _, title := range []string{"a", "bad", "b"} {
		m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: title}
		if title == "bad" {
			m.Data = json.RawMessage(`{"unterminated": `)
		}
		reqs = append(reqs, &publishRequest{m: m, size: 256, done: make(chan struct{})})
	}
	db.batcher.run(reqs)
	for _, r := range reqs {
		<-r.done
		if r.m.Title == "bad" {
			if r.err == nil || errors.Is(r.err, store.ErrUnavailable) {
				t.Fatalf("the refused publish answered %+v, %v; want its own error, not ErrUnavailable", r.res, r.err)
			}
			continue
		}
		if r.err != nil || r.res.Recipients != 1 || r.res.NotificationID == 0 {
			t.Fatalf("%s: %+v, %v; want stored for 1", r.m.Title, r.res, r.err)
		}
	}
	if reqs[0].res.NotificationID == reqs[2].res.NotificationID {
		t.Fatalf("both publishes answered notification %d", reqs[0].res.NotificationID)
	}
	items, err := db.Since(ctx, 1, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Notification.Title != "a" || items[1].Notification.Title != "b" {
		t.Fatalf("employee 1 has %d items; want a and b, once each", len(items))
	}
}
