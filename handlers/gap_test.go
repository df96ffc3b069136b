package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

func publishSilently(t *testing.T, st store.Store, title string, to int64) {
	t.Helper()
	if _, err := st.Publish(context.Background(), store.Message{To: store.Targets{Employees: []int64{to}}, Type: "t", Title: title}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestGapFilledFromStore: when a later seq reaches the stream before an
// earlier one (deliveries reordered or lost between instances), the stream
// fetches the missing ones from the store and keeps the order.
func TestGapFilledFromStore(t *testing.T) {
	e := newEnv(t)
	s := e.stream("user2")
	silent := e.silentStore()
	publishSilently(t, silent, "one", 2)
	publishSilently(t, silent, "two", 2)
	publishSilently(t, silent, "three", 2)
	// Only seq 3 is delivered live.
	e.Hub.Deliver(2, sse.NewEvent(3, "notification", []byte(`{"id":"3","title":"three"}`)))
	for i, want := range []string{"one", "two", "three"} {
		m := s.MustNext(t, wait)
		if m.ID != string(rune('1'+i)) || heraldtest.Title(t, m) != want {
			t.Fatalf("event %d = id %q %q, want %q", i, m.ID, heraldtest.Title(t, m), want)
		}
	}
	// A late duplicate of seq 2 is dropped.
	e.Hub.Deliver(2, sse.NewEvent(2, "notification", []byte(`{"id":"2","title":"two"}`)))
	s.ExpectQuiet(t, 100*time.Millisecond)
}

// TestResyncCatchesUp: after a listener reconnect (Resync), streams fetch
// what was committed while deliveries were lost.
func TestResyncCatchesUp(t *testing.T) {
	e := newEnv(t)
	s2, s3 := e.stream("user2"), e.stream("user3")
	silent := e.silentStore()
	publishSilently(t, silent, "missed", 2)
	s2.ExpectQuiet(t, 50*time.Millisecond)
	e.Hub.Resync()
	if m := s2.MustNext(t, wait); m.ID != "1" || heraldtest.Title(t, m) != "missed" {
		t.Fatalf("after resync: %+v", m)
	}
	s3.ExpectQuiet(t, 50*time.Millisecond)
	e.mustPublish("live", 2)
	if m := s2.MustNext(t, wait); m.ID != "2" {
		t.Fatalf("live after resync: id %q", m.ID)
	}
}
