package sse

import (
	"testing"
)

// TestDefaultQueueBound pins the default queue size the README promises
// (256 events) and that a hub without WithQueueSize uses it: exactly 256
// events wait for a stream whose socket takes nothing; the 257th ends it as
// a slow consumer.
func TestDefaultQueueBound(t *testing.T) {
	if DefaultQueueSize != 256 {
		t.Fatalf("DefaultQueueSize = %d; the README says 256", DefaultQueueSize)
	}
	h := testHub(t)
	s, c := subscribe(t, h, 1)
	c.blocked = true
	for i := int64(1); i <= 256; i++ {
		if n := h.Deliver(1, ev(i)); n != 1 {
			t.Fatalf("event %d not taken (queue bound below 256)", i)
		}
	}
	s.mu.Lock()
	queued, end := len(s.queue), s.end
	s.mu.Unlock()
	if queued != 256 || end != nil {
		t.Fatalf("after 256 events: %d queued, end %v; want 256 queued and open", queued, end)
	}
	if n := h.Deliver(1, ev(257)); n != 0 {
		t.Fatal("the 257th event was taken (queue bound above 256)")
	}
	if s.end != EndSlowConsumer {
		t.Fatalf("end %v, want slow_consumer", s.end)
	}
}
