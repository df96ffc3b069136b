package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds herald and herald-bench once for the tests that run them.
func binaries(t *testing.T) (herald, bench string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "herald-bench-test-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"../herald", "."} {
			out, err := exec.Command("go", "build", "-o", binDir+"/", pkg).CombinedOutput()
			if err != nil {
				buildErr = err
				binDir += ": " + string(out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v (%s)", buildErr, binDir)
	}
	return filepath.Join(binDir, "herald"), filepath.Join(binDir, "herald-bench")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// lastReport decodes the JSON line that ends the tool's stdout.
func lastReport(t *testing.T, stdout string) Report {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var r Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, stdout)
	}
	return r
}

// checkDelivery asserts the correctness half of a run; latency is not a
// test's business (this machine is shared).
func checkDelivery(t *testing.T, r Report, streams int, stderr string) {
	t.Helper()
	d := r.Delivery
	if r.Connect.Opened != streams || d.Streams != streams {
		t.Errorf("opened %d, checked %d streams, want %d (errors %v)", r.Connect.Opened, d.Streams, streams, r.Connect.Errors)
	}
	if d.Expected == 0 || d.Received != d.Expected || d.Lost+d.Duplicated+d.CrossDelivered+d.Unexpected+d.Disorder != 0 {
		t.Errorf("delivery %+v: want every expected event received once, nothing lost, duplicated or misaddressed", d)
	}
	if r.Publish == nil || r.Publish.OK != r.Publish.Planned {
		t.Errorf("publish %+v: want every planned publish accepted", r.Publish)
	}
	if !r.OK {
		t.Errorf("verdict: %v", r.Problems)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
}

// A small real run per mode: Herald spawned on SQLite, streams in this
// process, real sockets and tokens.
func TestRunSpawned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Herald")
	}
	herald, _ := binaries(t)
	tests := []struct {
		name    string
		streams int
		args    string
	}{
		{"unicast sse", 50, "--streams 50 --rate 100 --duration 2s"},
		{"broadcast ws", 30, "--transport ws --mode broadcast --streams 30 --rate 5 --duration 1s"},
		{"role ephemeral, several streams per employee", 30, "--mode role --roles 3 --ephemeral --streams 30 --employees 10 --rate 50 --duration 1s"},
		// Tokens expire during the run: every stream ends with token_expired,
		// reconnects with a fresh token and Last-Event-ID, and must still
		// get everything exactly once.
		{"token expiry, resume", 20, "--streams 20 --rate 40 --duration 4s --token-ttl 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--spawn", "--herald-bin", herald, "--settle", "0s", "--drain", "20s"}, strings.Fields(tt.args)...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if err := run(ctx, args, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			r := lastReport(t, stdout.String())
			checkDelivery(t, r, tt.streams, stderr.String())
			if strings.Contains(tt.args, "--token-ttl") && (r.Delivery.Drops == 0 || r.Delivery.Other["token_expired"] == 0) {
				t.Errorf("drops %d, token_expired events %d: want streams to expire and resume", r.Delivery.Drops, r.Delivery.Other["token_expired"])
			}
			if len(r.Servers) != 1 || r.Servers[0].Streams != tt.streams {
				t.Errorf("servers %+v, want one holding %d streams", r.Servers, tt.streams)
			}
			if !strings.Contains(stdout.String(), "verdict") {
				t.Errorf("no table before the JSON line:\n%s", stdout.String())
			}
		})
	}
}

// The same through worker processes: the binary re-executes itself with
// --worker, and the parent merges what the workers report.
func TestRunWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Herald and workers")
	}
	herald, bench := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bench, "--spawn", "--herald-bin", herald, "--workers", "2", "--streams", "40",
		"--employees", "20", "--rate", "50", "--duration", "1s", "--settle", "0s", "--drain", "20s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("herald-bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	r := lastReport(t, stdout.String())
	if r.Setup.Processes != 2 {
		t.Errorf("%d processes held the streams, want 2 workers", r.Setup.Processes)
	}
	checkDelivery(t, r, 40, stderr.String())
}

// -h lists every flag: bench.sh reads from it which transports the build
// has (the socketio scenario's Socket.IO column).
func TestHelpListsFlags(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"herald-bench --spawn", "-transport", "socketio", "-streams"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}
