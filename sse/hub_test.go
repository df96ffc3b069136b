package sse_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/corp/herald/sse"
)

func ev(seq int64) *sse.Event {
	return sse.NewEvent(seq, "notification", []byte(fmt.Sprintf(`{"id":"%d"}`, seq)))
}

func mustSubscribe(t *testing.T, h *sse.Hub, emp int64, roles ...string) *sse.Subscription {
	t.Helper()
	s, err := h.Subscribe(emp, roles)
	if err != nil {
		t.Fatalf("Subscribe(%d): %v", emp, err)
	}
	t.Cleanup(s.Close)
	return s
}

// drain returns the seqs queued on s right now.
func drain(s *sse.Subscription) []int64 {
	evs, _ := s.Take()
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func TestFanOutAndIsolation(t *testing.T) {
	h := sse.NewHub()
	tabs := []*sse.Subscription{mustSubscribe(t, h, 1), mustSubscribe(t, h, 1), mustSubscribe(t, h, 1)}
	other := mustSubscribe(t, h, 2)
	e := ev(1)
	if n := h.Publish(1, e); n != 3 {
		t.Fatalf("Publish reached %d streams, want 3", n)
	}
	for i, s := range tabs {
		select {
		case <-s.Ready():
		default:
			t.Fatalf("tab %d not signalled", i)
		}
		got, _ := s.Take()
		if len(got) != 1 || got[0] != e {
			t.Fatalf("tab %d got %v, want the one shared event", i, got)
		}
	}
	if got := drain(other); len(got) != 0 {
		t.Fatalf("employee 2 received employee 1's events: %v", got)
	}
	if h.Publish(3, ev(1)) != 0 {
		t.Fatal("publish to an employee without streams reached someone")
	}
}

func TestOrderAndBatching(t *testing.T) {
	h := sse.NewHub()
	s := mustSubscribe(t, h, 1)
	for i := int64(1); i <= 5; i++ {
		h.Publish(1, ev(i))
	}
	if got := fmt.Sprint(drain(s)); got != "[1 2 3 4 5]" {
		t.Fatalf("first batch = %s", got)
	}
	h.Publish(1, ev(6))
	if got := fmt.Sprint(drain(s)); got != "[6]" {
		t.Fatalf("second batch = %s", got)
	}
	if got := drain(s); len(got) != 0 {
		t.Fatalf("empty queue gave %v", got)
	}
}

func TestPublishToRolesAllOnce(t *testing.T) {
	h := sse.NewHub()
	admin := mustSubscribe(t, h, 1, "admin", "staff")
	staff := mustSubscribe(t, h, 2, "staff")
	loner := mustSubscribe(t, h, 3)
	if n := h.PublishTo(sse.Targets{Employees: []int64{1}, Roles: []string{"admin", "staff"}}, ev(0)); n != 2 {
		t.Fatalf("PublishTo reached %d, want 2 (admin once, staff once)", n)
	}
	if len(drain(admin)) != 1 || len(drain(staff)) != 1 || len(drain(loner)) != 0 {
		t.Fatal("role targeting delivered wrongly")
	}
	if n := h.PublishTo(sse.Targets{All: true}, ev(0)); n != 3 {
		t.Fatalf("PublishTo(all) reached %d, want 3", n)
	}
}

func TestMaxStreamsPerEmployee(t *testing.T) {
	h := sse.NewHub(sse.WithMaxStreams(10))
	var subs []*sse.Subscription
	for i := 0; i < 10; i++ {
		subs = append(subs, mustSubscribe(t, h, 1))
	}
	if _, err := h.Subscribe(1, nil); !errors.Is(err, sse.ErrTooManyStreams) {
		t.Fatalf("11th stream: err = %v, want ErrTooManyStreams", err)
	}
	mustSubscribe(t, h, 2) // others are not affected
	subs[0].Close()
	mustSubscribe(t, h, 1) // a closed tab frees its place
}

// TestSlowConsumerClosed: a stream that does not read is closed when its
// queue fills, publishing never blocks, and a reading stream gets everything.
func TestSlowConsumerClosed(t *testing.T) {
	h := sse.NewHub(sse.WithQueueSize(8))
	slow := mustSubscribe(t, h, 1)
	fast := mustSubscribe(t, h, 1)
	received := make(chan []int64)
	go func() {
		for {
			select {
			case <-fast.Ready():
				received <- drain(fast)
			case <-fast.Done():
				close(received)
				return
			}
		}
	}()
	var got []int64
	for i := int64(1); i <= 1000; i++ {
		h.Publish(1, ev(i))
		if i%4 == 0 {
			// Keep the reading stream under its bound: wait until it has what was sent.
			for int64(len(got)) < i {
				batch, ok := <-received
				if !ok {
					t.Fatalf("fast stream closed after %d events: %v", len(got), fast.Err())
				}
				got = append(got, batch...)
			}
		}
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("fast stream event %d has seq %d: order broken", i, seq)
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow stream still open after its queue overflowed")
	}
	if !errors.Is(slow.Err(), sse.ErrSlowConsumer) {
		t.Fatalf("slow stream ended with %v, want ErrSlowConsumer", slow.Err())
	}
	if fast.Err() != nil {
		t.Fatalf("fast stream ended: %v", fast.Err())
	}
}

func TestCloseEmployeeAndHub(t *testing.T) {
	h := sse.NewHub()
	a := mustSubscribe(t, h, 1)
	b := mustSubscribe(t, h, 2)
	h.CloseEmployee(1)
	<-a.Done()
	if !errors.Is(a.Err(), sse.ErrRemoved) {
		t.Fatalf("removed employee's stream ended with %v", a.Err())
	}
	if b.Err() != nil {
		t.Fatal("CloseEmployee(1) ended employee 2's stream")
	}
	h.Close()
	<-b.Done()
	if !errors.Is(b.Err(), sse.ErrClosed) {
		t.Fatalf("stream ended with %v on hub close, want ErrClosed", b.Err())
	}
	if _, err := h.Subscribe(3, nil); !errors.Is(err, sse.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	h.Close() // twice is fine
}

func TestResync(t *testing.T) {
	h := sse.NewHub()
	s := mustSubscribe(t, h, 1)
	h.Resync()
	<-s.Ready()
	if _, resync := s.Take(); !resync {
		t.Fatal("Take after Resync: resync = false")
	}
	if _, resync := s.Take(); resync {
		t.Fatal("resync reported twice")
	}
}

func TestStats(t *testing.T) {
	h := sse.NewHub()
	mustSubscribe(t, h, 1)
	s := mustSubscribe(t, h, 1)
	mustSubscribe(t, h, 2)
	if streams, emps := h.Stats(); streams != 3 || emps != 2 {
		t.Fatalf("Stats = %d, %d; want 3 streams, 2 employees", streams, emps)
	}
	s.Close()
	s.Close()
	if streams, _ := h.Stats(); streams != 2 {
		t.Fatalf("after Close: %d streams, want 2", streams)
	}
}

// TestConcurrentChurn runs publishers against subscribers that come and go;
// under -race it checks the locking, and each stream sees increasing seqs.
func TestConcurrentChurn(t *testing.T) {
	h := sse.NewHub(sse.WithQueueSize(1 << 16))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s, err := h.Subscribe(int64(w%2), []string{"r"})
				if err != nil {
					t.Error(err)
					return
				}
				last := int64(0)
				for _, e := range drain(s) {
					if e == 0 {
						continue // the role-targeted ephemeral events
					}
					if e <= last {
						t.Errorf("seq %d after %d", e, last)
					}
					last = e
				}
				s.Close()
			}
		}()
	}
	go func() {
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			h.Publish(seq%2, ev(seq))
			h.PublishTo(sse.Targets{Roles: []string{"r"}}, ev(0))
		}
	}()
	wg.Wait()
	close(stop)
}

func TestOnWakeFiresForWaitingEvents(t *testing.T) {
	h := sse.NewHub()
	s := mustSubscribe(t, h, 1)
	h.Publish(1, ev(1)) // queued before anyone registered
	woken := 0
	s.OnWake(func() { woken++ })
	if woken != 1 {
		t.Fatalf("OnWake with a waiting event woke %d times, want 1", woken)
	}
	h.Publish(1, ev(2))
	if woken != 2 {
		t.Fatalf("a publish after OnWake woke %d times in all, want 2", woken)
	}
	if got := fmt.Sprint(drain(s)); got != "[1 2]" {
		t.Fatalf("queue = %s", got)
	}
}

func TestPublishFuncBuildsOnlyForConnected(t *testing.T) {
	h := sse.NewHub()
	a, b := mustSubscribe(t, h, 1), mustSubscribe(t, h, 1)
	built := 0
	build := func() *sse.Event { built++; return ev(7) }
	if n := h.PublishFunc(2, build); n != 0 || built != 0 {
		t.Fatalf("no stream of employee 2: reached %d, built %d; want 0, 0", n, built)
	}
	if n := h.PublishFunc(1, build); n != 2 || built != 1 {
		t.Fatalf("two tabs of employee 1: reached %d, built %d; want 2 and one shared event", n, built)
	}
	if fmt.Sprint(drain(a), drain(b)) != "[7] [7]" {
		t.Fatal("the tabs did not get the event")
	}
	if got := fmt.Sprint(h.Connected([]int64{3, 1, 2})); got != "[1]" {
		t.Fatalf("Connected = %s, want [1]", got)
	}
}
