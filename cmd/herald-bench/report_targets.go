package main

import (
	"fmt"
	"slices"
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
	// base, when set, is a baseline scenario: the figure is the median of
	// label's runs divided by the median of base's.
	base string
	// worst reads the worst run instead of the median (a target every run
	// must meet).
	worst bool
}

// goals are the minimums, by bench.sh scenario.
var goals = []goal{
	{"streams-19500", "RSS per open SSE stream, 19,500 streams, one instance", serverGet(0, func(s ServerReport) float64 { return s.BytesPerStream / 1024 }), "KiB", 3, true, "", false},
	{"ws-19500", "RSS per open WebSocket stream, 19,500 streams, one instance", serverGet(0, func(s ServerReport) float64 { return s.BytesPerStream / 1024 }), "KiB", 4, true, "", false},
	{"unicast", "p99 publish→receive, 10,000 streams, 1,000 persisted unicast/s, SQLite", delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), "ms", 5, true, "", false},
	{"unicast", "server CPU per persisted publish, SQLite", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 250, true, "", false},
	{"unicast", "events lost, SQLite", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true, "", false},
	{"unicast-ephemeral", "server CPU per ephemeral publish, 10,000 streams, 1,000/s", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 100, true, "", false},
	{"unicast-pg", "p99 publish→receive, 10,000 streams, 1,000 persisted unicast/s, PostgreSQL", delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), "ms", 10, true, "", false},
	{"unicast-pg", "server CPU per persisted publish, PostgreSQL", serverGet(0, func(s ServerReport) float64 { return s.CPUPerPublishUs }), "µs", 350, true, "", false},
	{"unicast-pg", "events lost, PostgreSQL", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true, "", false},
	{"broadcast", "broadcast to 10,000 connected employees: stored and at the last stream", lastDelivery, "ms", 150, true, "", false},
	{"publish-rate-pg", "sustained persisted publishes to one instance, PostgreSQL", published(func(p *PublishReport) float64 { return p.Achieved }), "/s", 5000, false, "", false},
	{"connect-rs256", "new RS256-authenticated streams per second", always(func(r Report) float64 { return r.Connect.PerSecond }), "/s", 8000, false, "", false},
	{"two-instances-pg", "events lost, two instances × 19,500 streams", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) }), "", 0, true, "", false},
	{label: "retention", what: "p99 publish→receive while the retention sweep deletes the old notifications, ÷ the same run with RETENTION=0 (`retention-off`), 10,000 streams, 1,000 persisted unicast/s, SQLite",
		get: delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), unit: "×", limit: 2, atMost: true, base: "retention-off"},
	{label: "retention", what: "old notifications left at the end of the run (the worst run), SQLite", get: oldLeft, limit: 0, atMost: true, worst: true},
	{label: "retention-pg", what: "p99 publish→receive while the retention sweep deletes the old notifications, ÷ the same run with RETENTION=0 (`retention-off-pg`), PostgreSQL",
		get: delivered(func(d DeliveryReport) float64 { return d.Latency.P99 }), unit: "×", limit: 2, atMost: true, base: "retention-off-pg"},
	{label: "retention-pg", what: "old notifications left at the end of the run (the worst run), PostgreSQL", get: oldLeft, limit: 0, atMost: true, worst: true},
}

// oldLeft is what a run with --old-rows left of them; a run that could not
// count them (Left -1) has no figure, rather than a "met" 0 or less.
func oldLeft(r Report) (float64, bool) {
	if r.Retention == nil || r.Retention.Left < 0 {
		return 0, false
	}
	return float64(r.Retention.Left), true
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
		vals := goalValues(groups, t.label, t.get)
		if t.base != "" {
			// One figure: the ratio of the two medians.
			base := goalValues(groups, t.base, t.get)
			if len(vals) == 0 || len(base) == 0 || median(base) == 0 {
				vals = nil
			} else {
				vals = []float64{median(vals) / median(base)}
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
		if t.worst {
			m = slices.Max(vals)
			if !t.atMost {
				m = slices.Min(vals)
			}
		}
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
		runs := nums(vals)
		if t.base != "" {
			runs = fmt.Sprintf("%s ms ÷ %s ms", nums(goalValues(groups, t.label, t.get)), nums(goalValues(groups, t.base, t.get)))
		}
		fmt.Fprintf(w, "| %s (`%s`) | %s | %s %s | %s | %s |\n", t.what, t.label, limit, num(m), t.unit, runs, verdict)
	}
	for _, sg := range slopeGoals {
		writeSlopeGoal(w, groups, sg)
	}
	fmt.Fprintf(w, "\n")
}

// slopeGoal is the target on the marginal memory of a stream: the
// least-squares slope of RSS growth (the median of each scenario's runs)
// over the stream counts of its scenarios.
type slopeGoal struct {
	what   string
	labels []string
	limit  float64 // KiB per stream, at most
}

var slopeGoals = []slopeGoal{
	{"least-squares slope of RSS growth over 5,000, 10,000 and 19,500 SSE streams", []string{"streams-5000", "streams-10000", "streams-19500"}, 2.5},
	{"least-squares slope of RSS growth over 5,000, 10,000 and 19,500 WebSocket streams", []string{"ws-5000", "ws-10000", "ws-19500"}, 2.5},
}

// writeSlopeGoal writes a slope goal's row: measured only when every one of
// its scenarios ran.
func writeSlopeGoal(w *strings.Builder, groups []*loadGroup, sg slopeGoal) {
	var pts []slopePoint
	var labels []string
	for _, label := range sg.labels {
		labels = append(labels, "`"+label+"`")
		for _, g := range groups {
			if g.label != label {
				continue
			}
			if p, ok := growthPoint(g); ok {
				pts = append(pts, p)
			}
		}
	}
	limit := fmt.Sprintf("≤ %s KiB", num(sg.limit))
	what := fmt.Sprintf("%s (%s)", sg.what, strings.Join(labels, ", "))
	if len(pts) != len(sg.labels) {
		fmt.Fprintf(w, "| %s | %s | — | — | not measured |\n", what, limit)
		return
	}
	slope, _ := fitLine(pts)
	kib := slope / 1024
	verdict := "met"
	if kib > sg.limit {
		verdict = "**missed**"
	}
	var per []string
	for _, p := range pts {
		per = append(per, fmt.Sprintf("%d: %s MiB", p.streams, num(p.growth/(1<<20))))
	}
	fmt.Fprintf(w, "| %s | %s | %s KiB | growth (medians) %s | %s (%.2f× the limit) |\n", what, limit, num(kib), strings.Join(per, ", "), verdict, kib/sg.limit)
}

// goalValues collects a figure over the runs of scenario label.
func goalValues(groups []*loadGroup, label string, get func(Report) (float64, bool)) []float64 {
	var vals []float64
	for _, g := range groups {
		if g.label == label {
			vals = append(vals, collect(g.runs, get)...)
		}
	}
	return vals
}
