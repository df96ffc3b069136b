package handlers_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
)

// TestReconnectingReaderMissesNothing runs concurrent publishers to one
// employee while a reader disconnects and resumes with Last-Event-ID in a
// loop: what it receives, over all its connections, is everything that was
// published, in seq order, with no gap and no duplicate — across every
// switch from replay to live.
func TestReconnectingReaderMissesNothing(t *testing.T) {
	e := newEnv(t)
	const publishers, each = 6, 60
	const total = publishers * each

	published := make(chan string, total)
	var wg sync.WaitGroup
	for w := 0; w < publishers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				to := []int{2}
				if i%3 == 0 {
					to = []int{3, 2, 4} // overlapping recipients contend for locks
				}
				title := fmt.Sprintf("p%d-%d", w, i)
				status, _, out := heraldtest.Do(t, "POST", e.URL+"/notifications", e.service(),
					map[string]any{"to": map[string]any{"employees": to}, "type": "race", "title": title})
				if status != 201 {
					t.Errorf("publish %s: %d %s", title, status, out)
					return
				}
				published <- title
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				}
			}
		}()
	}

	// The bound is generous: the reader stops as soon as it has all, and a
	// race-enabled run on a loaded 2-core machine was seen to need more
	// than a minute for the 360 publishes.
	received, connects := heraldtest.ReadResuming(t, []string{e.URL}, e.token("user2"), total, 2*time.Second, 5*time.Minute)
	wg.Wait()
	close(published)
	heraldtest.CheckReceived(t, published, received, total)
	t.Logf("%d notifications over %d connections, none missed or repeated", total, connects)
}
