package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestScheduledInlineBoundary: a scheduled notification, once due, is
// announced like a publish (TestInlineRecipientsBoundary): its recipients
// travel in the payload up to inlineRecipients (100), each with the seq
// the delivery gave it, and a larger fan-out's do not.
func TestScheduledInlineBoundary(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	seedFast(t, u, 101)
	x := rawDB(t, u)
	ch := rawListener(t, u)
	ctx := context.Background()
	for _, tt := range []struct {
		recipients int
		inline     bool
	}{{100, true}, {101, false}, {1, true}} {
		ids := make([]int64, tt.recipients)
		for i := range ids {
			ids[i] = int64(i + 1)
		}
		at := time.Now().Add(time.Hour)
		res, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: ids}, Type: "t", Title: fmt.Sprint(tt.recipients), DeliverAt: &at}, nil)
		if err != nil || res.Recipients != tt.recipients {
			t.Fatalf("schedule for %d: %+v, %v", tt.recipients, res, err)
		}
		if _, err := x.Exec(`UPDATE scheduled SET due_at = now() - interval '1 second'`); err != nil {
			t.Fatal(err)
		}
		if n, err := db.DeliverDue(ctx, 10); err != nil || n != 1 {
			t.Fatalf("deliver due: %d, %v; want 1", n, err)
		}
		got := nextPayload(t, ch)
		head, list, hasList := strings.Cut(got, " ")
		if head != fmt.Sprint("n", res.NotificationID) || hasList != tt.inline {
			t.Fatalf("%d recipients: payload %.80q…; want n%d, inline = %v", tt.recipients, got, res.NotificationID, tt.inline)
		}
		if !tt.inline {
			continue
		}
		checkInlinePairs(t, db, list, ids)
	}
}
