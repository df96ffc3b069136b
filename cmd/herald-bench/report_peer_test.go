package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A partial run rewrites its own sections and keeps the others in place;
// headings inside code blocks are not sections.
func TestKeepSections(t *testing.T) {
	old := "# Herald benchmarks\n\nold date\n\n## Notes\n\nold notes\n\n## Micro-benchmarks\n\nold micro\n\n## Load runs\n\n```sh\n## not a heading\n```\nold load\n\n## Side by side with the Socket.IO peer\n\nold side\n"
	doc := "# Herald benchmarks\n\nnew date\n\n## Notes\n\nnew notes\n\n## Side by side with the Socket.IO peer\n\nnew side\n\n## Something new\n\nnew\n"
	got := keepSections(old, doc)
	want := "# Herald benchmarks\n\nnew date\n\n## Notes\n\nnew notes\n\n## Micro-benchmarks\n\nold micro\n\n## Load runs\n\n```sh\n## not a heading\n```\nold load\n\n## Side by side with the Socket.IO peer\n\nnew side\n\n## Something new\n\nnew\n"
	if got != want {
		t.Errorf("keepSections:\n%s\nwant:\n%s", got, want)
	}
	if got := keepSections("", doc); got != doc {
		t.Errorf("with no earlier file the report is unchanged:\n%s", got)
	}
}

// The comparison pairs run i of the peer with run i of each Herald
// transport, gives peer ÷ Herald, and judges the targets.
func TestSideBySide(t *testing.T) {
	dir := t.TempDir()
	var peers, herald []string
	for _, p := range []struct{ kib, cpu, p99 float64 }{{15, 3.0, 5}, {16, 2.0, 6}, {14, 2.5, 4}} {
		var r peerRun
		r.Mode, r.Transport, r.Node, r.LoadAvg = "azure", "websocket", "v20", "1.00 0.50 0.20"
		r.Clients.Requested, r.Clients.Connected = 10000, 10000
		r.Memory.KiBPerConn = p.kib
		r.Notify.TargetRate, r.Notify.DurationS, r.Notify.Accepted, r.Notify.Received = 1000, 20, 20000, 20000
		r.Notify.ServerCPUSec = p.cpu * 20000 / 1e6 * 100 // p.cpu × 100 µs per message
		r.Notify.Latency.P99 = p.p99
		b, _ := json.Marshal(r)
		peers = append(peers, string(b))
		// The same tool against Herald's /socket.io/: a third of the memory.
		r.Server = "herald"
		r.Memory.KiBPerConn = p.kib / 3
		b, _ = json.Marshal(r)
		peers = append(peers, string(b))
		for _, tr := range []string{"sse", "ws"} {
			h := Report{Label: "socketio-" + tr, Command: "herald-bench --transport " + tr, OK: true, LoadAvg: "2.00 1.00 0.50",
				Setup:    Setup{Transport: tr, Streams: 10000, Ephemeral: true, Rate: 1000},
				Connect:  ConnectSummary{Attempted: 10000, Opened: 10000},
				Delivery: DeliveryReport{Expected: 20000, Received: 20000, Latency: Summary{P99: p.p99 + 1}},
				Servers:  []ServerReport{{BytesPerStream: 1024 * p.kib / 4, CPUPerEventUs: p.cpu * 100 / 2}},
			}
			b, _ := json.Marshal(h)
			herald = append(herald, string(b))
		}
	}
	peerFile, sideFile := filepath.Join(dir, "peer.jsonl"), filepath.Join(dir, "side.jsonl")
	if err := os.WriteFile(peerFile, []byte("a log line\n"+strings.Join(peers, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sideFile, []byte(strings.Join(herald, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	args := []string{"--peer", peerFile, "--side", sideFile, "--side-transports", "sse ws socketio", "--side-missing", "socketio=not built yet"}
	if err := reportCmd(args, &out, &out); err != nil {
		t.Fatal(err)
	}
	doc := out.String()
	for _, want := range []string{
		"## Side by side with the Socket.IO peer", "10000 connections", "1000 ephemeral unicast messages/s for 20 s",
		"| Socket.IO peer (websocket, azure) | Herald Socket.IO, by load.js | ÷ | Herald SSE | ÷ | Herald WebSocket | ÷ | Herald Socket.IO | ÷ |",
		"| RSS per connection (KiB) | 15 | 5 | 3.00× | 3.750 | 4.00× | 3.750 | 4.00× | — | — |",
		"| server CPU per delivered message (µs) | 250 | 250 | 1.00× | 125 | 2.00× |",
		"| ≥ 3× less RSS per connection | met (3.00×) | met (4.00×) | met (4.00×) | not measured |",
		"| 1 | Herald Socket.IO, by load.js | 1.00 0.50 0.20 | 5 |",
		"peer-load-herald.js",
		"| ≥ 3× less server CPU per delivered message | **missed** (1.00×) | **missed** (2.00×) |",
		"| p99 publish→receive no worse | met (1.00×) | **missed** (0.83×) |",
		"Herald Socket.IO: not measured in this run (not built yet).",
		"| 2 | Herald WebSocket | 2.00 1.00 0.50 | 4 |",
		"herald-bench --transport ws",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
}
