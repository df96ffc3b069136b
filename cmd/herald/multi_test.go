package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/tcpproxy"
	"github.com/corp/herald/store/postgres/pgtest"
)

// The tests in this file run two `herald serve` processes on one fresh
// PostgreSQL database (TEST_DATABASE_URL; see pgtest), as a deployment
// behind a load balancer would.

// startPair starts instance a on dbA and instance b on dbB (usually the same
// database, a possibly through a proxy) and puts employees 1..5 (user1..,
// user1 an admin) through a.
func startPair(t *testing.T, dbA, dbB string) (a, b *proc, svc string) {
	t.Helper()
	env := []string{"JWT_SECRET=" + e2eSecret, "HEARTBEAT_INTERVAL=1s"}
	a = startHerald(t, []string{"serve"}, append(env, "DATABASE_URL="+dbA)...)
	b = startHerald(t, []string{"serve"}, append(env, "DATABASE_URL="+dbB)...)
	svc = mint(t, "hr-sync", "service", "Directory.Write")
	for id := 1; id <= 5; id++ {
		roles := []string{"staff"}
		if id == 1 {
			roles = append(roles, "admin")
		}
		status, _, out := heraldtest.Do(t, "PUT", fmt.Sprintf("%s/employees/%d", a.URL, id), svc, map[string]any{
			"username": fmt.Sprintf("user%d", id), "email": fmt.Sprintf("user%d@corp.example", id), "roles": roles,
		})
		if status != 201 {
			t.Fatalf("PUT employee %d: %d %s", id, status, out)
		}
	}
	waitReady(t, a, 200)
	waitReady(t, b, 200)
	return a, b, svc
}

func publishTo(t *testing.T, p *proc, svc, title string, body map[string]any) (int, []byte) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["to"]; !ok {
		body["to"] = map[string]any{"employees": []int{2}}
	}
	body["type"], body["title"] = "multi.test", title
	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", svc, body)
	return status, out
}

// TestTwoInstances: what is published on one instance reaches streams on
// the other, once; directory changes travel too.
func TestTwoInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b, svc := startPair(t, db, db)
	onA := heraldtest.MustOpenStream(t, a.URL+"/events", mint(t, "user2"))
	onB := heraldtest.MustOpenStream(t, b.URL+"/events", mint(t, "user2"))

	if status, out := publishTo(t, b, svc, "from b", nil); status != 201 {
		t.Fatalf("publish on b: %d %s", status, out)
	}
	if status, out := publishTo(t, a, svc, "from a", map[string]any{"to": map[string]any{"all": true}}); status != 201 {
		t.Fatalf("publish on a: %d %s", status, out)
	}
	for name, s := range map[string]*heraldtest.Stream{"a": onA, "b": onB} {
		for i, want := range []string{"from b", "from a"} {
			m := s.MustNext(t, 10*time.Second)
			if m.ID != strconv.Itoa(i+1) || m.Event != "notification" || heraldtest.Title(t, m) != want {
				t.Fatalf("stream on %s: event %d = id %q %q %q, want id %d %q", name, i, m.ID, m.Event, heraldtest.Title(t, m), i+1, want)
			}
		}
	}
	// Ephemeral messages cross instances too, without an id.
	status, out := publishTo(t, a, svc, "typing", map[string]any{"persist": false, "event": "typing"})
	if status != 202 {
		t.Fatalf("ephemeral on a: %d %s", status, out)
	}
	if m := onB.MustNext(t, 10*time.Second); m.Event != "typing" || m.HasID || heraldtest.Title(t, m) != "typing" {
		t.Fatalf("ephemeral on b arrived as %+v", m)
	}
	onA.MustNext(t, 10*time.Second) // a's own copy
	onA.ExpectQuiet(t, 300*time.Millisecond)
	onB.ExpectQuiet(t, 300*time.Millisecond)

	// Deleting the employee on a closes their stream on b.
	status, _, out = heraldtest.Do(t, "DELETE", a.URL+"/employees/2", svc, nil)
	if status != 204 {
		t.Fatalf("DELETE employee 2: %d %s", status, out)
	}
	onB.WaitClosed(t, 10*time.Second)
	onA.WaitClosed(t, 10*time.Second)
}

// TestTwoInstancesReconnectingReader is the foundation's race test spread
// over two instances: concurrent publishers on both, and a reader that
// disconnects and resumes (Last-Event-ID) on one instance, then the other.
// Over all its connections it gets everything, in seq order, with no gap
// and no duplicate.
func TestTwoInstancesReconnectingReader(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b, svc := startPair(t, db, db)
	instances := []*proc{a, b}
	const publishers, each = 4, 50
	const total = publishers * each

	published := make(chan string, total)
	var wg sync.WaitGroup
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := instances[w%2]
			for i := range each {
				to := []int{2}
				if i%3 == 0 {
					to = []int{3, 2, 4} // overlapping recipients contend for locks
				}
				title := fmt.Sprintf("p%d-%d", w, i)
				if status, out := publishTo(t, p, svc, title, map[string]any{"to": map[string]any{"employees": to}}); status != 201 {
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

	received, connects := heraldtest.ReadResuming(t, []string{a.URL, b.URL}, mint(t, "user2"), total, 3*time.Second, 120*time.Second)
	wg.Wait()
	close(published)
	heraldtest.CheckReceived(t, published, received, total)
	t.Logf("%d notifications over %d connections to two instances, none missed or repeated", total, connects)
}

// TestStoreOutage cuts instance a off PostgreSQL (a TCP proxy in between)
// while instance b keeps it. On a: publishes answer 503 unavailable and
// write nothing, /readyz is 503, open streams stay up. When the connection
// is back, a recovers by itself, and its stream catches up with what b
// published during the outage.
func TestStoreOutage(t *testing.T) {
	db := pgtest.NewDatabase(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	a, b, svc := startPair(t, u.String(), db)
	s := heraldtest.MustOpenStream(t, a.URL+"/events", mint(t, "user2"))
	if status, out := publishTo(t, a, svc, "before", nil); status != 201 {
		t.Fatalf("publish before the outage: %d %s", status, out)
	}
	if m := s.MustNext(t, 10*time.Second); heraldtest.Title(t, m) != "before" {
		t.Fatalf("stream got %q, want before", heraldtest.Title(t, m))
	}

	proxy.Cut()
	status, hdr, out := heraldtest.Do(t, "POST", a.URL+"/notifications", svc, map[string]any{
		"to": map[string]any{"employees": []int{2, 3}}, "type": "multi.test", "title": "lost"})
	if status != 503 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(out), `"code":"unavailable"`) || hdr.Get("Retry-After") == "" {
		t.Fatalf("publish during the outage: %d %s %s; want 503 problem+json unavailable with Retry-After", status, hdr.Get("Content-Type"), out)
	}
	status, _, out = heraldtest.Do(t, "GET", a.URL+"/readyz", "", nil)
	if status != 503 || !strings.Contains(string(out), `"code":"unavailable"`) {
		t.Fatalf("/readyz during the outage: %d %s; want 503 unavailable", status, out)
	}
	if status, out := publishTo(t, b, svc, "during", nil); status != 201 {
		t.Fatalf("publish on b during a's outage: %d %s", status, out)
	}
	// The stream stays open: heartbeats keep coming.
	if m, err := s.NextBlock(5 * time.Second); err != nil || m.Dispatched() {
		t.Fatalf("stream on a during the outage: %+v %v; want a heartbeat", m, err)
	}

	proxy.Restore()
	waitReady(t, a, 200)
	m := s.MustNext(t, 15*time.Second)
	if m.ID != "2" || heraldtest.Title(t, m) != "during" {
		t.Fatalf("after the outage the stream got id %q %q; want id 2 \"during\" (caught up from the store)", m.ID, heraldtest.Title(t, m))
	}
	if status, out := publishTo(t, a, svc, "after", nil); status != 201 {
		t.Fatalf("publish on a after the outage: %d %s", status, out)
	}
	if m := s.MustNext(t, 10*time.Second); m.ID != "3" || heraldtest.Title(t, m) != "after" {
		t.Fatalf("stream got id %q %q, want id 3 after", m.ID, heraldtest.Title(t, m))
	}
	// Nothing of the failed publish was stored, for either recipient.
	for _, user := range []string{"user2", "user3"} {
		status, _, out := heraldtest.Do(t, "GET", b.URL+"/notifications", mint(t, user), nil)
		if status != 200 || strings.Contains(string(out), `"lost"`) {
			t.Fatalf("%s's inbox: %d %s; the failed publish must have written nothing", user, status, out)
		}
	}
}
