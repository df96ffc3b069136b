package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// peerRun is what the Socket.IO peer's load tool (load.js, in the peer's
// folder) reports for one run; only the fields the comparison reads.
type peerRun struct {
	When      string `json:"when"`
	Mode      string `json:"mode"`
	Transport string `json:"transport"`
	Node      string `json:"node"`
	LoadAvg   string `json:"loadavg"` // added by peer-socketio.sh
	// Server is "herald" when load.js drove Herald's /socket.io/
	// (peer-socketio.sh herald), empty when it drove the peer.
	Server  string `json:"server"`
	Clients struct {
		Requested int `json:"requested"`
		Connected int `json:"connected"`
		Failed    int `json:"failed"`
	} `json:"clients"`
	Connect struct {
		PerSecond    float64 `json:"perSecond"`
		ServerCPUSec float64 `json:"serverCpuSec"`
	} `json:"connect"`
	Memory struct {
		KiBPerConn float64 `json:"kiBPerConn"`
		Before     struct {
			RSS float64 `json:"VmRSS_kiB"`
		} `json:"before"`
	} `json:"memory"`
	Notify struct {
		TargetRate   float64 `json:"targetRate"`
		DurationS    float64 `json:"durationS"`
		Planned      int64   `json:"planned"`
		Sent         int64   `json:"sent"`
		Accepted     int64   `json:"accepted"`
		Received     int64   `json:"received"`
		Lost         int64   `json:"lost"`
		Duplicates   int64   `json:"duplicates"`
		Misdirected  int64   `json:"misdirected"`
		ServerCPUSec float64 `json:"serverCpuSec"`
		Latency      struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
			Max float64 `json:"max"`
		} `json:"deliveryLatencyMs"`
		ToolLagP99 float64 `json:"toolEventLoopLagP99Ms"`
	} `json:"notify"`
}

func readPeerFile(path string) ([]peerRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []peerRun
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r peerRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, r)
	}
	return runs, sc.Err()
}

// side is one column of the comparison: the peer, or Herald over one
// transport. Its figures are per run, in run order, so that run i of each
// column is one round of the same bench.sh invocation.
type side struct {
	name    string
	figures map[string][]float64
	loads   []string
	checks  []string // lost/duplicated/cross-delivered, per run
}

// The comparison's figures, all "lower is better".
const (
	figRSS      = "RSS per connection (KiB)"
	figCPU      = "server CPU per delivered message (µs)"
	figP50      = "publish→receive p50 (ms)"
	figP99      = "publish→receive p99 (ms)"
	figCPUConn  = "server CPU per connect (ms)"
	figConnRate = "connects per second"
)

var sideFigures = []string{figRSS, figCPU, figP99, figP50, figCPUConn, figConnRate}

// loadJSHerald names the column of Herald driven by the peer's load.js.
const loadJSHerald = "Herald Socket.IO, by load.js"

func peerSide(runs []peerRun) *side {
	s := &side{name: "Socket.IO peer", figures: map[string][]float64{}}
	for _, r := range runs {
		s.name = fmt.Sprintf("Socket.IO peer (%s, %s)", r.Transport, r.Mode)
		if r.Server == "herald" {
			s.name = loadJSHerald
		}
		add := func(k string, v float64) { s.figures[k] = append(s.figures[k], v) }
		add(figRSS, r.Memory.KiBPerConn)
		if r.Notify.Received > 0 {
			add(figCPU, r.Notify.ServerCPUSec/float64(r.Notify.Received)*1e6)
		}
		add(figP50, r.Notify.Latency.P50)
		add(figP99, r.Notify.Latency.P99)
		if r.Clients.Connected > 0 {
			add(figCPUConn, r.Connect.ServerCPUSec/float64(r.Clients.Connected)*1e3)
		}
		add(figConnRate, r.Connect.PerSecond)
		s.loads = append(s.loads, r.LoadAvg)
		s.checks = append(s.checks, fmt.Sprintf("%d/%d connected, %d/%d sent answered 202, %d received, lost %d, dup %d, misdirected %d; load tool's event-loop lag p99 %s ms",
			r.Clients.Connected, r.Clients.Requested, r.Notify.Accepted, r.Notify.Sent, r.Notify.Received, r.Notify.Lost, r.Notify.Duplicates, r.Notify.Misdirected, num(r.Notify.ToolLagP99)))
	}
	return s
}

var transportNames = map[string]string{"sse": "SSE", "ws": "WebSocket", "socketio": "Socket.IO"}

// heraldSides groups Herald's runs by transport, in the order given.
func heraldSides(runs []Report, transports []string) []*side {
	var out []*side
	for _, t := range transports {
		s := &side{name: "Herald " + cmpOr(transportNames[t], t), figures: map[string][]float64{}}
		for _, r := range runs {
			if r.Setup.Transport != t || len(r.Servers) == 0 {
				continue
			}
			sv := r.Servers[0]
			add := func(k string, v float64) { s.figures[k] = append(s.figures[k], v) }
			add(figRSS, sv.BytesPerStream/1024)
			if sv.CPUPerEventUs > 0 {
				add(figCPU, sv.CPUPerEventUs)
			}
			add(figP50, r.Delivery.Latency.P50)
			add(figP99, r.Delivery.Latency.P99)
			add(figCPUConn, sv.CPUPerConnectMs)
			add(figConnRate, r.Connect.PerSecond)
			s.loads = append(s.loads, r.LoadAvg)
			s.checks = append(s.checks, fmt.Sprintf("%d/%d connected, %d/%d received, lost %d, dup %d, cross %d",
				r.Connect.Opened, r.Connect.Attempted, r.Delivery.Received, r.Delivery.Expected, r.Delivery.Lost, r.Delivery.Duplicated, r.Delivery.CrossDelivered))
		}
		out = append(out, s)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pairedRatio is peer ÷ Herald for a figure: the median over rounds of the
// ratio within each round (the two ran back to back, under the same load
// from the rest of the machine), or the ratio of medians when the rounds do
// not pair up. ok is false when either side lacks the figure.
func pairedRatio(peer, herald []float64) (float64, bool) {
	if len(peer) == 0 || len(herald) == 0 {
		return 0, false
	}
	if len(peer) == len(herald) {
		var rs []float64
		for i := range peer {
			if herald[i] > 0 {
				rs = append(rs, peer[i]/herald[i])
			}
		}
		if len(rs) == len(peer) {
			return median(rs), true
		}
	}
	if m := median(herald); m > 0 {
		return median(peer) / m, true
	}
	return 0, false
}

// sideGoal is one of the comparison's targets: Herald at least factor
// times lower than the peer on figure.
type sideGoal struct {
	figure string
	factor float64
	what   string
}

var sideGoals = []sideGoal{
	{figRSS, 3, "≥ 3× less RSS per connection"},
	{figCPU, 3, "≥ 3× less server CPU per delivered message"},
	{figP99, 1, "p99 publish→receive no worse"},
}

// writeSideBySide writes the comparison with the Socket.IO peer: the
// medians of each side, peer ÷ Herald, the targets, and every run.
// transports lists Herald's transports in column order; one without runs
// gets a column that says so (missing says why).
func writeSideBySide(w *strings.Builder, runs []peerRun, herald []Report, transports []string, missing map[string]string) {
	fmt.Fprintf(w, "## Side by side with the Socket.IO peer\n\n")
	fmt.Fprintf(w, "Measured %s on %s.\n\n", lastRun(runs, herald).Format("2006-01-02 15:04 MST"), machine())
	var peers, byLoadJS []peerRun
	for _, r := range runs {
		if r.Server == "herald" {
			byLoadJS = append(byLoadJS, r)
		} else {
			peers = append(peers, r)
		}
	}
	ps := peerSide(peers)
	hs := heraldSides(herald, transports)
	if len(byLoadJS) > 0 {
		hs = append([]*side{peerSide(byLoadJS)}, hs...)
	}
	if len(peers) > 0 {
		p := peers[0]
		fmt.Fprintf(w, "The Socket.IO peer (the Node servers Herald replaces, rebuilt with socket.io 4.8, Node %s) and Herald ran one after the other in each round, "+
			"on the same machine, with the same load: %d connections (one employee each), then %.0f ephemeral unicast messages/s for %.0f s, each to a random connected employee "+
			"(the peer stores nothing, so Herald's publishes are ephemeral too). "+
			"Each side's own load tool opens the connections (at most 200 connects in flight), reads the server's RSS before them and after a pause, "+
			"and its CPU time (`/proc/PID/stat`) over the ramp and over the messages, until every message has arrived. "+
			"The peer's tool is Node (socket.io-client, WebSocket transport), Herald's is herald-bench; both share the 2 cores with the server.\n\n",
			p.Node, p.Clients.Requested, p.Notify.TargetRate, p.Notify.DurationS)
	}
	if len(byLoadJS) > 0 {
		fmt.Fprintf(w, "The peer's own load tool drives Herald's `/socket.io/` too (the column \"%s\", run right after the peer in each round): "+
			"load.js is unchanged and its socket.io-client sockets connect to Herald directly; "+
			"`cmd/herald-bench/peer-load-herald.js`, preloaded with `node -r`, turns its publishes to the peer's own `POST /internal/notify` "+
			"into Herald's ephemeral `POST /notifications` to the same employee (Herald has no emit endpoint: backends publish over REST), "+
			"answers its `/internal/stats` from Herald's `/metrics`, and hands its listeners the message's `data` (where Herald carries the payload). "+
			"Herald runs with SQLite, the peer's employees in its directory and, in azure mode, the peer's issuer as its Azure tenant. "+
			"So memory per connection, CPU and latency in that column come from the same tool, the same way, as the peer's; "+
			"its latency includes the REST publish, as the peer's includes its HTTP emit. "+
			"herald-bench's columns measure the same load with Herald's own tool (and SSE and WebSocket beside Socket.IO); "+
			"load.js reads RSS without a forced GC on both sides.\n\n", loadJSHerald)
	}
	if len(herald) > 0 || len(byLoadJS) > 0 {
		fmt.Fprintf(w, "```sh\n%s\n```\n\n", sideCommand(herald, len(byLoadJS) > 0))
	}
	fmt.Fprintf(w, "Medians over the rounds; \"÷\" is peer ÷ Herald (the median of the ratio within each round), so above 1 means Herald uses less.\n\n")
	header := "| figure | " + ps.name + " |"
	sep := "|---|---|"
	for _, h := range hs {
		header += " " + h.name + " | ÷ |"
		sep += "---|---|"
	}
	fmt.Fprintf(w, "%s\n%s\n", header, sep)
	for _, f := range sideFigures {
		row := fmt.Sprintf("| %s | %s |", f, medianCell(ps.figures[f]))
		for _, h := range hs {
			ratio := "—"
			if r, ok := pairedRatio(ps.figures[f], h.figures[f]); ok {
				if f == figConnRate { // higher is better: Herald ÷ peer
					r = 1 / r
				}
				ratio = fmt.Sprintf("%.2f×", r)
			}
			row += fmt.Sprintf(" %s | %s |", medianCell(h.figures[f]), ratio)
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintf(w, "\n(For connects per second, \"÷\" is Herald ÷ peer.)\n\n")
	for _, h := range hs {
		if len(h.loads) == 0 {
			t := strings.TrimPrefix(h.name, "Herald ")
			fmt.Fprintf(w, "%s: not measured in this run", h.name)
			for k, why := range missing {
				if transportNames[k] == t || k == t {
					fmt.Fprintf(w, " (%s)", why)
				}
			}
			fmt.Fprintf(w, ".\n\n")
		}
	}

	fmt.Fprintf(w, "| target | %s |\n|---|%s\n", strings.Join(names(hs), " | "), strings.Repeat("---|", len(hs)))
	for _, g := range sideGoals {
		row := "| " + g.what + " |"
		for _, h := range hs {
			r, ok := pairedRatio(ps.figures[g.figure], h.figures[g.figure])
			switch {
			case !ok:
				row += " not measured |"
			case r >= g.factor:
				row += fmt.Sprintf(" met (%.2f×) |", r)
			default:
				row += fmt.Sprintf(" **missed** (%.2f×) |", r)
			}
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintf(w, "\nEvery run (load average = `/proc/loadavg` 1/5/15 min just before it: the machine is shared with other work):\n\n")
	fmt.Fprintf(w, "| round | server | load average | KiB/conn | CPU µs/message | p50 / p99 ms | CPU ms/connect | checks |\n|---|---|---|---|---|---|---|---|\n")
	for i := range max(len(ps.loads), maxLoads(hs)) {
		for _, s := range append([]*side{ps}, hs...) {
			if i >= len(s.loads) {
				continue
			}
			at := func(f string) string {
				if i < len(s.figures[f]) {
					return num(s.figures[f][i])
				}
				return "—"
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s / %s | %s | %s |\n", i+1, s.name, cmpOr(s.loads[i], "—"),
				at(figRSS), at(figCPU), at(figP50), at(figP99), at(figCPUConn), s.checks[i])
		}
	}
	fmt.Fprintln(w)
}

// lastRun is when the last run of the comparison ended (now, when no run
// says).
func lastRun(peers []peerRun, herald []Report) time.Time {
	var last time.Time
	for _, p := range peers {
		if t, err := time.Parse(time.RFC3339, p.When); err == nil && t.After(last) {
			last = t
		}
	}
	for _, r := range herald {
		if t, err := time.Parse(time.RFC3339, r.Time); err == nil && t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return time.Now().UTC()
	}
	return last.UTC()
}

func medianCell(vs []float64) string {
	if len(vs) == 0 {
		return "—"
	}
	return num(median(vs))
}

func names(ss []*side) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name
	}
	return out
}

func maxLoads(ss []*side) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s.loads))
	}
	return n
}

// sideCommand shows how the comparison ran: make's command, then one
// herald-bench command per transport (the peer's follows from bench.sh).
func sideCommand(runs []Report, loadJS bool) string {
	lines := []string{"make bench BENCH_MICRO=0 BENCH_SCENARIOS=socketio   # the peer from BENCH_PEER_DIR, then Herald, each round"}
	if loadJS {
		lines = append(lines, "cmd/herald-bench/peer-socketio.sh herald DEST bin/bench/herald N RATE DURATION SETTLE   # load.js against Herald")
	}
	var seen []string
	for _, r := range runs {
		if !slices.Contains(seen, r.Command) {
			seen = append(seen, r.Command)
			lines = append(lines, r.Command)
		}
	}
	return strings.Join(lines, "\n")
}
