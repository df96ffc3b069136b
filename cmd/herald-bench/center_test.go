package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A --center-calls run on a spawned Herald: the inbox is seeded straight
// into SQLite, every call answers 200 with what the seed implies (its
// checks fail the run otherwise), and each kind of call is timed as many
// times as asked.
func TestCenterCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Herald")
	}
	herald, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--spawn", "--herald-bin", herald, "--streams", "1", "--inbox", "120", "--center-calls", "10"}
	if err := run(ctx, args, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	var r CenterReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout.String())
	}
	if r.Store != "sqlite" || r.Inbox != 120 || r.Format != "center/1" {
		t.Errorf("report %+v: want sqlite, inbox 120, format center/1", r)
	}
	for _, name := range []string{"inbox", "counts", "state"} {
		c, ok := r.Calls[name]
		if !ok || c.N != 10 || c.P50 <= 0 || c.P99 < c.P50 || c.Max < c.P99 {
			t.Errorf("%s: %+v, want 10 timed calls with p50 <= p99 <= max", name, c)
		}
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("stderr does not summarise %s:\n%s", name, stderr.String())
		}
	}
}

// An empty inbox is refused before anything is timed.
func TestCenterCallsNeedAnInbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Herald")
	}
	herald, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"--spawn", "--herald-bin", herald, "--streams", "1", "--center-calls", "5"}, func(string) string { return "" }, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--inbox") {
		t.Fatalf("run: %v, want an error that says to seed with --inbox", err)
	}
}

func TestTiming(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := timing(d)
	if got != (CallTiming{N: 100, P50: 51, P99: 100, Max: 100}) {
		t.Errorf("timing: %+v", got)
	}
	if timing(nil) != (CallTiming{}) {
		t.Error("timing of nothing is not zero")
	}
}
