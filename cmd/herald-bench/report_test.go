package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/corp/herald/sse
cpu: Intel(R) Xeon(R) Processor
BenchmarkHubPublish/streams=1-2   	 3795735	        56.68 ns/op	        56.67 ns/stream	       0 B/op	       0 allocs/op
BenchmarkHubPublish/streams=1-2   	 3795735	        60.00 ns/op	        60.00 ns/stream	       0 B/op	       0 allocs/op
BenchmarkHubPublish/streams=1-2   	 3795735	        50.00 ns/op	        50.00 ns/stream	       0 B/op	       0 allocs/op
PASS
pkg: github.com/corp/herald/auth
BenchmarkVerifyRS256/parallel-2   	    7138	     63754 ns/op	     15685 verifies/s	   20848 B/op	     277 allocs/op
ok  	github.com/corp/herald/auth	1.999s
`

func TestParseBenchAndMedians(t *testing.T) {
	benches, err := parseBench(strings.NewReader(benchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(benches) != 2 || benches[0].pkg != "github.com/corp/herald/sse" || benches[1].pkg != "github.com/corp/herald/auth" {
		t.Fatalf("parsed %d benchmarks: %+v", len(benches), benches)
	}
	if got := median(benches[0].metrics["ns/op"]); got != 56.68 {
		t.Errorf("median ns/op %v, want 56.68 (the middle of three runs)", got)
	}
	if got := median(benches[1].metrics["verifies/s"]); got != 15685 {
		t.Errorf("custom metric %v, want 15685", got)
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 || median(nil) != 0 {
		t.Error("median of an even count is the mean of the middle two; of none, 0")
	}
}

func TestFitLine(t *testing.T) {
	pts := []slopePoint{{streams: 5000, growth: 5000*9000 + 1e6}, {streams: 10000, growth: 10000*9000 + 1e6}, {streams: 19500, growth: 19500*9000 + 1e6}}
	slope, intercept := fitLine(pts)
	if slope < 8999.99 || slope > 9000.01 || intercept < 999_999 || intercept > 1_000_001 {
		t.Fatalf("fit %v bytes/stream + %v, want 9000 + 1e6", slope, intercept)
	}
}

// The whole report from files: every load figure with its command, medians
// across runs, and the memory slope over streams-only scenarios.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	micro := filepath.Join(dir, "micro.txt")
	if err := os.WriteFile(micro, []byte(benchOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, n := range []int{5000, 10000, 10000, 10000} {
		r := Report{Tool: "herald-bench", Label: "streams", Command: "herald-bench --spawn --rate 0 --streams " + itoa(n), OK: true,
			Setup:   Setup{Streams: n, Transport: "sse", Store: "sqlite", Auth: "hs256", Instances: 1},
			Connect: ConnectSummary{Opened: n, PerSecond: 2000},
			Servers: []ServerReport{{Streams: n, RSSIdle: 20 << 20, RSSStreams: 20<<20 + uint64(n)*8000, BytesPerStream: 8000}}}
		b, _ := json.Marshal(r)
		lines = append(lines, string(b))
	}
	load := filepath.Join(dir, "load.jsonl")
	if err := os.WriteFile(load, []byte("not json, a table line\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := reportCmd([]string{"--micro", micro, "--micro-command", "go test -bench .", "--load", load}, &out, &out); err != nil {
		t.Fatal(err)
	}
	doc := out.String()
	for _, want := range []string{
		"cores", "go test -bench .", "| sse | BenchmarkHubPublish/streams=1-2 | 3 | 56.7 |",
		"herald-bench --spawn --rate 0 --streams 10000", "3 run(s)", "| streams opened | 10000 | 10000, 10000, 10000 |",
		"Least-squares fit: RSS growth ≈ 8000 bytes/stream",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestSlopeGoals: the slope targets read the least-squares slope over the
// medians of their three scenarios, and say "not measured" while one of
// them has not run.
func TestSlopeGoals(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	add := func(label string, transport string, n int, perStream uint64) {
		r := Report{Tool: "herald-bench", Label: label, Command: "herald-bench --spawn --rate 0 --streams " + itoa(n), OK: true,
			Setup:   Setup{Streams: n, Transport: transport, Store: "sqlite", Auth: "hs256", Instances: 1},
			Connect: ConnectSummary{Opened: n, PerSecond: 2000},
			Servers: []ServerReport{{Streams: n, RSSIdle: 20 << 20, RSSStreams: 20<<20 + 4<<20 + uint64(n)*perStream, BytesPerStream: float64(4<<20+uint64(n)*perStream) / float64(n)}}}
		b, _ := json.Marshal(r)
		lines = append(lines, string(b))
	}
	for _, n := range []int{5000, 10000, 19500} {
		add("streams-"+itoa(n), "sse", n, 1024)
	}
	add("ws-5000", "ws", 5000, 4096)
	load := filepath.Join(dir, "load.jsonl")
	if err := os.WriteFile(load, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := reportCmd([]string{"--load", load}, &out, &out); err != nil {
		t.Fatal(err)
	}
	doc := out.String()
	for _, want := range []string{
		"| least-squares slope of RSS growth over 5,000, 10,000 and 19,500 SSE streams (`streams-5000`, `streams-10000`, `streams-19500`) | ≤ 2.500 KiB | 1 KiB | growth (medians) 5000: 8.883 MiB, 10000: 13.8 MiB, 19500: 23.0 MiB | met (0.40× the limit) |",
		"| least-squares slope of RSS growth over 5,000, 10,000 and 19,500 WebSocket streams (`ws-5000`, `ws-10000`, `ws-19500`) | ≤ 2.500 KiB | — | — | not measured |",
		"| RSS per open WebSocket stream, 19,500 streams, one instance (`ws-19500`) | ≤ 4 KiB | — | — | not measured |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
}
