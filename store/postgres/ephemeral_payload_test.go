package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// maxNotifyPayload is the package's maxPayload: the largest NOTIFY payload
// Herald sends.
const maxNotifyPayload = 7000

// nextEphemeral returns the next ephemeral payload ('e' inline, 'x'
// stored), skipping other kinds.
func nextEphemeral(t *testing.T, ch <-chan *pq.Notification) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if n != nil && (strings.HasPrefix(n.Extra, "e") || strings.HasPrefix(n.Extra, "x")) {
				return n.Extra
			}
		case <-deadline:
			t.Fatal("no ephemeral payload within 10 s")
		}
	}
}

// TestEphemeralPayloadBoundary: an ephemeral message whose payload is
// exactly maxPayload bytes travels inline; one byte more and it waits in
// ephemeral_messages. The payload's length depends on the message's
// creation time (its fraction of a second is written without trailing
// zeros), so each attempt measures a probe first and sizes the body from
// it; an attempt whose two times differ in length is tried again.
func TestEphemeralPayloadBoundary(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	x := rawDB(t, u)
	ch := rawListener(t, u)
	ctx := context.Background()
	send := func(body string) string {
		t.Helper()
		m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "e", Body: body}
		if _, err := db.PublishEphemeral(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		return nextEphemeral(t, ch)
	}
	// length is the payload p stands for: itself inline, or the stored
	// message's "e" + JSON.
	length := func(p string) (int, bool) {
		t.Helper()
		if p[0] == 'e' {
			return len(p), true
		}
		id, err := strconv.ParseInt(p[1:], 10, 64)
		if err != nil {
			t.Fatalf("payload %q", p)
		}
		var stored string
		if err := x.Get(&stored, `SELECT payload FROM ephemeral_messages WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return 1 + len(stored), false
	}
	for _, want := range []int{maxNotifyPayload, maxNotifyPayload + 1} {
		done := false
		for attempt := 0; attempt < 50 && !done; attempt++ {
			const probe = 6000
			n, inline := length(send(strings.Repeat("x", probe)))
			if !inline {
				t.Fatalf("a probe of %d bytes was stored", n)
			}
			n, inline = length(send(strings.Repeat("x", probe+want-n)))
			if n != want {
				continue // the creation times differ in length
			}
			if inline != (want <= maxNotifyPayload) {
				t.Fatalf("a payload of %d bytes (limit %d): inline %v", n, maxNotifyPayload, inline)
			}
			done = true
		}
		if !done {
			t.Fatalf("no payload of exactly %d bytes in 50 attempts", want)
		}
	}
}
