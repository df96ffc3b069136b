package heraldtest

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/corp/herald/sse"
)

// ReadResuming reads total notifications of one employee the way a flaky
// client would: over many short connections to urls (in turn), each reading
// a random number of events before it hangs up, the first asking for
// everything (?lastEventId=0) and every later one resuming with
// Last-Event-ID. It fails the test on any gap, duplicate or stranger event,
// and returns the titles received and how many connections it took.
func ReadResuming(tb testing.TB, urls []string, token string, total int, quiet, timeout time.Duration) (titles map[string]bool, connects int) {
	tb.Helper()
	titles = map[string]bool{}
	last := 0
	deadline := time.Now().Add(timeout)
	for last < total {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v the reader has %d of %d", timeout, last, total)
		}
		url := urls[connects%len(urls)] + "/events?lastEventId=0" // the first connect asks for everything
		var hdr []string
		if connects > 0 {
			hdr = []string{"Last-Event-ID", strconv.Itoa(last)}
		}
		connects++
		s := MustOpenStream(tb, url, token, hdr...)
		want := 1 + rand.IntN(40)
		for n := 0; n < want && last < total; n++ {
			m, err := s.Next(quiet)
			if err != nil {
				break // quiet for now: reconnect
			}
			id, err := strconv.Atoi(m.ID)
			if err != nil || m.Event != "notification" {
				tb.Fatalf("unexpected event %+v", m)
			}
			if id != last+1 {
				tb.Fatalf("connection %d (%s): got id %d after %d (gap or duplicate)", connects, url, id, last)
			}
			title := Title(tb, m)
			if titles[title] {
				tb.Fatalf("duplicate delivery of %s", title)
			}
			titles[title] = true
			last = id
		}
		s.Close()
	}
	return titles, connects
}

// CheckReceived fails the test unless every title published (the channel,
// closed) was received, and nothing else.
func CheckReceived(tb testing.TB, published <-chan string, received map[string]bool, total int) {
	tb.Helper()
	for title := range published {
		if !received[title] {
			tb.Errorf("published %s never received", title)
		}
	}
	if len(received) != total {
		tb.Fatalf("received %d distinct notifications, want %d", len(received), total)
	}
}

// Title returns the title of a notification event.
func Title(tb testing.TB, m sse.Message) string {
	tb.Helper()
	var n struct{ Title string }
	if err := json.Unmarshal([]byte(m.Data), &n); err != nil {
		tb.Fatalf("event data %q: %v", m.Data, err)
	}
	return n.Title
}
