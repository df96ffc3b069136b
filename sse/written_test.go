package sse

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// writtenLog records WithWritten's calls.
type writtenLog struct {
	mu    sync.Mutex
	calls []string
}

func (w *writtenLog) record(employee, from, to int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, fmt.Sprintf("%d:%d-%d", employee, from, to))
}

func (w *writtenLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.calls, " ")
}

// TestWrittenReportsStoredCopies: every stored copy a stream writes is
// reported, replayed ones in runs, and nothing else is (ephemeral messages,
// replay_truncated).
func TestWrittenReportsStoredCopies(t *testing.T) {
	var log writtenLog
	src := &memSource{}
	src.add(7, 4)
	h := testHub(t, WithSource(src), WithWritten(log.record))
	s, err := h.open(context.Background(), Params{Employee: 7, After: 1, Resuming: true, ExpiresAt: time.Now().Add(time.Hour)}, sseFraming{})
	if err != nil {
		t.Fatal(err)
	}
	c := &memConn{direct: true}
	s.start(c)
	if got := ids(c.messages(t)); got != "2 3 4" {
		t.Fatalf("replay = %q", got)
	}
	src.add(7, 1)
	h.Deliver(7, ev(5))
	h.Deliver(7, NewEvent(0, "presence", []byte(`{}`)))
	c.messages(t)
	if got, want := log.String(), "7:2-4 7:5-5"; got != want {
		t.Fatalf("written = %q; want %q", got, want)
	}
}

// TestWrittenRunsFromOne: a run that starts at seq 1 is reported whole;
// events outside the sequence written by the worker are not reported.
func TestWrittenRunsFromOne(t *testing.T) {
	var log writtenLog
	src := &memSource{}
	src.add(7, 3)
	h := testHub(t, WithSource(src), WithWritten(log.record))
	s, c := open(t, h, Params{Employee: 7, After: 0, Resuming: true})
	if got := ids(c.messages(t)); got != "1 2 3" {
		t.Fatalf("replay = %q", got)
	}
	c.direct = false // the worker writes what follows
	h.Deliver(7, NewEvent(0, "presence", []byte(`{}`)))
	runWork(s, c)
	if got := ids(c.messages(t)); got != "-" {
		t.Fatalf("wrote %q, want the ephemeral event", got)
	}
	if got, want := log.String(), "7:1-3"; got != want {
		t.Fatalf("written = %q; want %q", got, want)
	}
}
