package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/internal/tcpproxy"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// partialSink is a Recorder whose instance has streams of some employees only.
type partialSink struct {
	*storetest.Recorder
	mu   sync.Mutex
	here map[int64]bool
	asks int // how many ids Connected was asked about
}

func (s *partialSink) Connected(ids []int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asks += len(ids)
	var out []int64
	for _, id := range ids {
		if s.here[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestListenerReadsOnlyConnected: an instance is handed only the recipients
// that have a stream on it, for small fan-outs (recipients in the payload)
// and large ones (read from the store) alike, and nothing at all for a
// notification none of its streams needs.
func TestListenerReadsOnlyConnected(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	seedFast(t, u, 300)
	sink := &partialSink{Recorder: storetest.NewRecorder(), here: map[int64]bool{2: true, 250: true}}
	listen(t, db, sink)
	publish := func(title string, to store.Targets) {
		t.Helper()
		if _, err := db.Publish(context.Background(), store.Message{To: to, Type: "t", Title: title}, nil); err != nil {
			t.Fatal(err)
		}
	}
	publish("elsewhere", store.Targets{Employees: []int64{1, 3}})
	publish("small", store.Targets{Employees: []int64{1, 2, 3}})
	publish("large", store.Targets{All: true})
	sink.Wait(t, "two deliveries", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool { return len(d) >= 2 })
	d := sink.Deliveries()
	if len(d) != 2 || d[0].Notification.Title != "small" || d[1].Notification.Title != "large" {
		t.Fatalf("deliveries %v; want small then large (elsewhere concerns nobody here)", titlesOf(d))
	}
	if got := d[0].Recipients; len(got) != 1 || got[0] != (store.Recipient{Employee: 2, Seq: 1}) {
		t.Fatalf("small fan-out delivered to %v, want employee 2 (seq 1)", got)
	}
	got := d[1].Recipients
	slices.SortFunc(got, func(a, b store.Recipient) int { return int(a.Employee - b.Employee) })
	if len(got) != 2 || got[0] != (store.Recipient{Employee: 2, Seq: 2}) || got[1] != (store.Recipient{Employee: 250, Seq: 1}) {
		t.Fatalf("broadcast delivered to %v, want employees 2 (seq 2) and 250 (seq 1)", got)
	}
	if d[1].Notification.Title != "large" || d[1].Notification.ID == 0 || d[1].Notification.CreatedAt.IsZero() {
		t.Fatalf("broadcast content %+v", d[1].Notification)
	}
}

func titlesOf(d []store.Delivery) []string {
	var out []string
	for _, x := range d {
		out = append(out, x.Notification.Title)
	}
	return out
}

// TestBroadcastTenThousand stores and delivers a 10,000-recipient broadcast
// (the NOTIFY carries only its id).
func TestBroadcastTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("large fan-out")
	}
	const n = 10000
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	seedFast(t, u, n)
	h := storetest.NewHarness(t, db)
	start := time.Now()
	res, err := db.Publish(context.Background(), store.Message{To: store.Targets{All: true}, Type: "t", Title: "everyone"}, nil)
	if err != nil || res.Recipients != n {
		t.Fatalf("broadcast: %+v, %v; want %d recipients", res, err, n)
	}
	stored := time.Since(start)
	h.Sink.Wait(t, "the broadcast", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool {
		return len(d) == 1 && len(d[0].Recipients) == n
	})
	t.Logf("broadcast to %d: stored in %v, delivered to the sink after %v", n, stored, time.Since(start))
}

// TestLargePayloadsStayUnderTheLimit: a fan-out of 100 employees with the
// largest IDs still travels inline, and an ephemeral message far larger
// than a NOTIFY payload still reaches the listeners, whole.
func TestLargePayloadsStayUnderTheLimit(t *testing.T) {
	u := pgtest.NewDatabase(t)
	db := mustOpenURL(t, u)
	h := storetest.NewHarness(t, db)
	var ids []int64
	for i := range int64(100) {
		id := int64(1<<63-1) - i
		ids = append(ids, id)
		if _, _, err := db.PutEmployee(context.Background(), store.Employee{ID: id, Username: fmt.Sprint("u", i), Roles: []string{"crowd"}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.Publish(context.Background(), store.Message{To: store.Targets{Employees: ids}, Type: "t", Title: "big ids"}, nil)
	if err != nil || res.Recipients != 100 {
		t.Fatalf("publish to 100 large ids: %+v, %v", res, err)
	}
	body := strings.Repeat("ñ", 10000)
	m := store.Message{To: store.Targets{Roles: []string{"crowd"}}, Type: "t", Title: "huge", Body: body, Event: "big", Data: []byte(`{"k":"` + strings.Repeat("x", 15000) + `"}`)}
	if res, err := db.PublishEphemeral(context.Background(), m, nil); err != nil || res.Recipients != 100 {
		t.Fatalf("large ephemeral: %+v, %v", res, err)
	}
	h.Sink.Wait(t, "both", func(d []store.Delivery, e []store.Ephemeral, _ []storetest.Change) bool {
		return len(d) == 1 && len(e) == 1
	})
	e := h.Sink.Ephemerals()[0]
	if e.Body != body || len(e.Employees) != 100 || e.Event != "big" || len(e.Data) != len(m.Data) || !slices.Equal(e.Roles, []string{"crowd"}) {
		t.Fatalf("large ephemeral arrived as event %q, %d employees, body %d bytes, data %d bytes", e.Event, len(e.Employees), len(e.Body), len(e.Data))
	}
	if got := len(h.Sink.Deliveries()[0].Recipients); got != 100 {
		t.Fatalf("100-recipient delivery has %d recipients", got)
	}
}

// proxied returns the URL of the database u through a TCP proxy.
func proxied(t *testing.T, u string) (*tcpproxy.Proxy, string) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, pu.Host)
	pu.Host = p.Addr()
	return p, pu.String()
}

// TestStoreDownAndBack cuts the connection between an instance (a) and
// PostgreSQL, as an outage would: a's publishes fail with ErrUnavailable and
// write nothing, a is not ready, and what another instance (b) publishes
// meanwhile reaches a's sink through a resync once the connection is back,
// without anyone's help.
func TestStoreDownAndBack(t *testing.T) {
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	a := mustOpenURL(t, viaProxy)
	b := mustOpenURL(t, u)
	storetest.Seed(t, b, 2, 0)
	ha := storetest.NewHarness(t, a)
	resyncs := ha.Sink.Resyncs()
	ctx := context.Background()
	m := func(title string) store.Message {
		return store.Message{To: store.Targets{Employees: []int64{1, 2}}, Type: "t", Title: title}
	}

	proxy.Cut()
	if _, err := a.Publish(ctx, m("lost"), nil); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("publish while the store is down: %v, want ErrUnavailable", err)
	}
	if _, err := a.Publish(ctx, m("lost"), &store.Idempotency{Owner: "o", Key: "k", Hash: "h"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("idempotent publish while the store is down: %v, want ErrUnavailable", err)
	}
	if err := a.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping while the store is down: %v, want ErrUnavailable", err)
	}
	if _, err := b.Publish(ctx, m("during the outage"), nil); err != nil {
		t.Fatal(err)
	}
	if head, _ := b.Head(ctx, 1); head != 1 {
		t.Fatalf("head of employee 1 = %d; the failed publishes must have written nothing", head)
	}

	proxy.Restore()
	eventually(t, "the store ready again after the outage", func() bool { return a.Ping(ctx) == nil })
	waitResync(t, ha.Sink, resyncs)
	if _, err := a.Publish(ctx, m("after"), nil); err != nil {
		t.Fatalf("publish after the outage: %v", err)
	}
	ha.Sink.Wait(t, "the publish after the outage", func(d []store.Delivery, _ []store.Ephemeral, _ []storetest.Change) bool {
		return len(d) > 0 && d[len(d)-1].Notification.Title == "after"
	})
	if got := titlesOf(ha.Sink.Deliveries()); slices.Contains(got, "lost") {
		t.Fatalf("a failed publish was delivered: %v", got)
	}
}

// TestHalfOpenListener stalls the network between the listener and
// PostgreSQL without closing anything: the listener's ping times out, it
// drops the connection and reconnects once the network is back, and the
// sink is told to resync.
func TestHalfOpenListener(t *testing.T) {
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	a := mustOpenURL(t, viaProxy, postgres.WithListenerPing(100*time.Millisecond, 300*time.Millisecond))
	h := storetest.NewHarness(t, a)
	resyncs := h.Sink.Resyncs()
	closed := proxy.Closed()
	proxy.Stall()
	// The listener's ping times out and it drops the connection (the proxy
	// sees it closed); then bytes pass again.
	eventually(t, "the listener dropping its stalled connection", func() bool { return proxy.Closed() > closed })
	proxy.Restore()
	waitResync(t, h.Sink, resyncs)
}

// waitResync waits until rec has been told to resync more than before times.
func waitResync(t *testing.T, rec *storetest.Recorder, before int) {
	t.Helper()
	eventually(t, "a resync after the connection came back", func() bool { return rec.Resyncs() > before })
}

// eventually waits up to 20s for cond, or fails the test naming what it
// waited for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestListenStopsOnStalledNetwork: cancelling Listen ends it even when the
// network to PostgreSQL swallows everything (a shutdown must not hang).
func TestListenStopsOnStalledNetwork(t *testing.T) {
	u := pgtest.NewDatabase(t)
	proxy, viaProxy := proxied(t, u)
	a := mustOpenURL(t, viaProxy, postgres.WithListenerPing(50*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Listen(ctx, storetest.NewRecorder()) }()
	eventually(t, "the store ready", func() bool { return a.Ping(context.Background()) == nil })
	closed := proxy.Closed()
	proxy.Stall()
	// The ping gave up on the connection; a reconnect hangs now.
	eventually(t, "the listener dropping its stalled connection", func() bool { return proxy.Closed() > closed })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Listen returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen still running 10s after its context ended")
	}
}
