package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
)

// rawListener listens on Herald's NOTIFY channel ("herald") with a plain
// pq.Listener, to see the payloads the publish function sends.
func rawListener(t *testing.T, u string) <-chan *pq.Notification {
	t.Helper()
	l := pq.NewListener(u, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { l.Close() })
	if err := l.Listen("herald"); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return l.Notify
}

// nextPayload returns the next notification's payload whose kind is 'n'
// (a stored notification), skipping others (directory changes).
func nextPayload(t *testing.T, ch <-chan *pq.Notification) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if n != nil && strings.HasPrefix(n.Extra, "n") {
				return n.Extra
			}
		case <-deadline:
			t.Fatal("no notification payload within 10 s")
		}
	}
}

// TestInlineRecipientsBoundary: a notification to exactly 100 recipients
// (the publish function's inline_max) carries them in its NOTIFY payload as
// "employee:seq" pairs; one to 101 carries only its id, and listeners read
// the recipients from the store. Both sides of the boundary, byte for byte.
func TestInlineRecipientsBoundary(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	seedFast(t, u, 101)
	ch := rawListener(t, u)
	ids := func(n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(i + 1)
		}
		return out
	}
	ctx := context.Background()
	for _, tt := range []struct {
		recipients int
		inline     bool
	}{
		{99, true},
		{100, true},
		{101, false},
		{1, true},
	} {
		res, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: ids(tt.recipients)}, Type: "t", Title: fmt.Sprint(tt.recipients)}, nil)
		if err != nil || res.Recipients != tt.recipients {
			t.Fatalf("publish to %d: %+v, %v", tt.recipients, res, err)
		}
		got := nextPayload(t, ch)
		head, list, hasList := strings.Cut(got, " ")
		if head != fmt.Sprint("n", res.NotificationID) {
			t.Fatalf("%d recipients: payload %.80q, want it to start with n%d", tt.recipients, got, res.NotificationID)
		}
		if hasList != tt.inline {
			t.Fatalf("%d recipients: payload %.80q…; inline = %v, want %v", tt.recipients, got, hasList, tt.inline)
		}
		if !tt.inline {
			continue
		}
		checkInlinePairs(t, db, list, ids(tt.recipients))
	}
}

// checkInlinePairs fails t unless list, a NOTIFY payload's inline
// recipients, names every one of ids once, each with its newest seq.
func checkInlinePairs(t *testing.T, db store.Store, list string, ids []int64) {
	t.Helper()
	pairs := strings.Split(list, ",")
	slices.Sort(pairs)
	var want []string
	for _, id := range ids {
		head, err := db.Head(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%d:%d", id, head))
	}
	slices.Sort(want)
	if !slices.Equal(pairs, want) {
		t.Fatalf("%d recipients: pairs %v, want %v", len(ids), pairs, want)
	}
}
