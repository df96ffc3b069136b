package handlers_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
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

	received := map[string]bool{}
	last, connects := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for last < total {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the reader has %d of %d", last, total)
		}
		var hdr []string
		url := e.URL + "/events?lastEventId=0" // the first connect asks for everything
		if connects > 0 {
			hdr = []string{"Last-Event-ID", strconv.Itoa(last)}
		}
		connects++
		s := heraldtest.MustOpenStream(t, url, e.token("user2"), hdr...)
		want := 1 + rand.IntN(40)
		for n := 0; n < want && last < total; n++ {
			m, err := s.Next(2 * time.Second)
			if err != nil {
				break // quiet for now: reconnect
			}
			id, err := strconv.Atoi(m.ID)
			if err != nil || m.Event != "notification" {
				t.Fatalf("unexpected event %+v", m)
			}
			if id != last+1 {
				t.Fatalf("connection %d: got id %d after %d (gap or duplicate)", connects, id, last)
			}
			title := titleOf(t, m)
			if received[title] {
				t.Fatalf("duplicate delivery of %s", title)
			}
			received[title] = true
			last = id
		}
		s.Close()
	}
	wg.Wait()
	close(published)
	for title := range published {
		if !received[title] {
			t.Errorf("published %s never received", title)
		}
	}
	if len(received) != total {
		t.Fatalf("received %d distinct notifications, want %d", len(received), total)
	}
	t.Logf("%d notifications over %d connections, none missed or repeated", total, connects)
}
