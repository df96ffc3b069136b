package postgres

import (
	"fmt"
	"testing"

	"github.com/lib/pq"
)

// TestDrain: the listener's batch takes the notifications already waiting,
// in order, up to maxBatch in all, and ends at a closed channel.
func TestDrain(t *testing.T) {
	ch := make(chan *pq.Notification, maxBatch+5)
	for i := range maxBatch + 5 {
		ch <- &pq.Notification{Extra: fmt.Sprint(i + 1)}
	}
	batch := drain(ch, []*pq.Notification{{Extra: "0"}})
	if len(batch) != maxBatch || len(ch) != 6 {
		t.Fatalf("drained a batch of %d, %d left; want %d and 6", len(batch), len(ch), maxBatch)
	}
	for i, n := range batch {
		if n.Extra != fmt.Sprint(i) {
			t.Fatalf("notification %d is %q; want them in order", i, n.Extra)
		}
	}
	close(ch)
	if batch = drain(ch, nil); len(batch) != 6 || batch[0].Extra != fmt.Sprint(maxBatch) || batch[5].Extra != fmt.Sprint(maxBatch+5) {
		t.Fatalf("drained %d from a closed channel; want the 6 left, in order", len(batch))
	}
}
