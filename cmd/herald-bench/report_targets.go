package main

import (
	"fmt"
	"strings"
)

// goal is one of the targets, read off a scenario's runs.
type goal struct {
	label  string // the scenario (bench.sh's name)
	what   string
	get    func(r Report) (float64, bool)
	unit   string
	limit  float64
	atMost bool // the figure must stay at or below limit (else at or above)
}

// goals are the minimums, by bench.sh scenario.
var goals = []goal{
	{"streams-19500", "RSS per open SSE stream, 19,500 streams, one instance", serverGet(0, func(s ServerReport) float64 { return s.BytesPerStream / 1024 }), "KiB", 3, true},
	{"unicast", "p99 publish→receive, 10,000 streams, 1,000 persisted unicast/s, SQLite", delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), "ms", 5, true},
	{"unicast", "server CPU per persisted publish, SQLite", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 250, true},
	{"unicast", "events lost, SQLite", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true},
	{"unicast-ephemeral", "server CPU per ephemeral publish, 10,000 streams, 1,000/s", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 100, true},
	{"unicast-pg", "p99 publish→receive, 10,000 streams, 1,000 persisted unicast/s, PostgreSQL", delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), "ms", 10, true},
	{"unicast-pg", "server CPU per persisted publish, PostgreSQL", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 350, true},
	{"unicast-pg", "events lost, PostgreSQL", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true},
	{"broadcast", "broadcast to 10,000 connected employees: stored and at the last stream", lastDelivery, "ms", 150, true},
	{"publish-rate-pg", "sustained persisted publishes to one instance, PostgreSQL", published(func(p *PublishReport) float64 { return p.Achieved }), "/s", 5000, false},
	{"connect-rs256", "new RS256-authenticated streams per second", always(func(r Report) float64 { return r.Connect.PerSecond }), "/s", 8000, false},
	{"two-instances-pg", "events lost, two instances × 19,500 streams", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true},
}

func serverGet(i int, f func(ServerReport) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) {
		if i >= len(r.Servers) || r.Servers[i].RSSIdle == 0 {
			return 0, false
		}
		return f(r.Servers[i]), true
	}
}

func lastDelivery(r Report) (float64, bool) {
	if r.Delivery.LastDelivery == nil {
		return 0, false
	}
	return r.Delivery.LastDelivery.Max, true
}

// writeTargets writes the goals table: each goal's median over its
// scenario's runs, met or missed and by how much. Scenarios that did not
// run are listed as not measured.
func writeTargets(w *strings.Builder, groups []*loadGroup) {
	fmt.Fprintf(w, "## Targets\n\n")
	fmt.Fprintf(w, "The issue's targets, each read off the median of its scenario's runs (below, with every run and the command).\n\n")
	fmt.Fprintf(w, "| target | limit | median | runs | verdict |\n|---|---|---|---|---|\n")
	for _, t := range goals {
		var vals []float64
		for _, g := range groups {
			if g.label == t.label {
				vals = append(vals, collect(g.runs, t.get)...)
			}
		}
		op := "≥"
		if t.atMost {
			op = "≤"
		}
		limit := fmt.Sprintf("%s %s %s", op, num(t.limit), t.unit)
		if len(vals) == 0 {
			fmt.Fprintf(w, "| %s (`%s`) | %s | — | — | not measured |\n", t.what, t.label, limit)
			continue
		}
		m := median(vals)
		met := m >= t.limit
		if t.atMost {
			met = m <= t.limit
		}
		verdict := "met"
		if !met {
			verdict = "**missed**"
		}
		if t.limit != 0 {
			verdict += fmt.Sprintf(" (%.2f× the limit)", m/t.limit)
		}
		fmt.Fprintf(w, "| %s (`%s`) | %s | %s %s | %s | %s |\n", t.what, t.label, limit, num(m), t.unit, nums(vals), verdict)
	}
	fmt.Fprintf(w, "\n")
}
