package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// loadGroup is the runs of one scenario: the same label and command.
type loadGroup struct {
	label, command string
	runs           []Report
}

func groupRuns(runs []Report) []*loadGroup {
	var groups []*loadGroup
	for _, r := range runs {
		i := slices.IndexFunc(groups, func(g *loadGroup) bool { return g.label == r.Label && g.command == r.Command })
		if i < 0 {
			groups = append(groups, &loadGroup{label: r.Label, command: r.Command})
			i = len(groups) - 1
		}
		groups[i].runs = append(groups[i].runs, r)
	}
	return groups
}

// figure is one line of a scenario's table.
type figure struct {
	name string
	get  func(r Report) (float64, bool)
}

func always(f func(r Report) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) { return f(r), true }
}

func published(f func(p *PublishReport) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) {
		if r.Publish == nil {
			return 0, false
		}
		return f(r.Publish), true
	}
}

func delivered(f func(d DeliveryReport) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) {
		if r.Publish == nil {
			return 0, false
		}
		return f(r.Delivery), true
	}
}

var loadFigures = []figure{
	{"streams opened", always(func(r Report) float64 { return float64(r.Connect.Opened) })},
	{"streams failed", always(func(r Report) float64 { return float64(r.Connect.Failed) })},
	{"connect rate (streams/s)", always(func(r Report) float64 { return r.Connect.PerSecond })},
	{"connect p50 / p99 (ms)", nil}, // two figures, filled in below
	{"publishes accepted", published(func(p *PublishReport) float64 { return float64(p.OK) })},
	{"publish rate achieved (/s)", published(func(p *PublishReport) float64 { return p.Achieved })},
	{"publish request p99 (ms)", published(func(p *PublishReport) float64 { return p.Latency.P99 })},
	{"publish→receive p50 (ms)", delivered(func(d DeliveryReport) float64 { return d.Latency.P50 })},
	{"publish→receive p90 (ms)", delivered(func(d DeliveryReport) float64 { return d.Latency.P90 })},
	{"publish→receive p99 (ms)", delivered(func(d DeliveryReport) float64 { return d.Latency.P99 })},
	{"publish→receive p99.9 (ms)", delivered(func(d DeliveryReport) float64 { return d.Latency.P999 })},
	{"publish→receive max (ms)", delivered(func(d DeliveryReport) float64 { return d.Latency.Max })},
	{"time to last stream, max over publishes (ms)", func(r Report) (float64, bool) {
		if r.Delivery.LastDelivery == nil {
			return 0, false
		}
		return r.Delivery.LastDelivery.Max, true
	}},
	{"events delivered (/s)", delivered(func(d DeliveryReport) float64 { return d.PerSecond })},
	{"events received / expected", delivered(func(d DeliveryReport) float64 { return ratio(d.Received, d.Expected) })},
	{"lost", delivered(func(d DeliveryReport) float64 { return float64(d.Lost) })},
	{"duplicated", delivered(func(d DeliveryReport) float64 { return float64(d.Duplicated) })},
	{"cross-delivered", delivered(func(d DeliveryReport) float64 { return float64(d.CrossDelivered) })},
	{"stream drops (reconnected)", delivered(func(d DeliveryReport) float64 { return float64(d.Drops) })},
	{"old notifications stored first (--old-rows)", retained(func(t *RetentionReport) float64 { return float64(t.OldRows) })},
	{"rows the sweep deleted while publishing", retained(func(t *RetentionReport) float64 { return t.DeletedDuring })},
	{"seconds of publishing with the sweep deleting", retained(func(t *RetentionReport) float64 { return t.SweepSeconds })},
	{"old notifications left at the end", oldLeft},
	{"bench CPU (s)", always(func(r Report) float64 { return r.Client.CPUSeconds })},
}

func retained(f func(t *RetentionReport) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) {
		if r.Retention == nil {
			return 0, false
		}
		return f(r.Retention), true
	}
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// serverFigures are per instance.
func serverFigures(i int) []figure {
	get := func(f func(s ServerReport) float64) func(Report) (float64, bool) {
		return func(r Report) (float64, bool) {
			if i >= len(r.Servers) || r.Servers[i].RSSIdle == 0 {
				return 0, false
			}
			return f(r.Servers[i]), true
		}
	}
	// Per-publish and per-event costs exist only in runs that published.
	run := func(f func(s ServerReport) float64) func(Report) (float64, bool) {
		g := get(f)
		return func(r Report) (float64, bool) {
			if r.Publish == nil {
				return 0, false
			}
			return g(r)
		}
	}
	p := fmt.Sprintf("server %d ", i+1)
	return []figure{
		{p + "RSS idle (MiB)", get(func(s ServerReport) float64 { return float64(s.RSSIdle) / (1 << 20) })},
		{p + "RSS with streams (MiB)", get(func(s ServerReport) float64 { return float64(s.RSSStreams) / (1 << 20) })},
		{p + "RSS growth per stream (bytes)", get(func(s ServerReport) float64 { return s.BytesPerStream })},
		{p + "RSS peak (MiB)", get(func(s ServerReport) float64 { return float64(s.HWM) / (1 << 20) })},
		{p + "CPU per connect (ms)", get(func(s ServerReport) float64 { return s.CPUPerConnectMs })},
		{p + "CPU per publish (µs)", run(func(s ServerReport) float64 { return s.CPUPerPublishUs })},
		{p + "CPU per delivered event (µs)", run(func(s ServerReport) float64 { return s.CPUPerEventUs })},
	}
}

func writeLoad(w *strings.Builder, runs []Report) {
	fmt.Fprintf(w, "## Load runs\n\n")
	fmt.Fprintf(w, "Each scenario ran its command several times; the table gives the median and every run. Loss, duplicates and cross-delivery must be 0 in every run.\n\n")
	groups := groupRuns(runs)
	writeTargets(w, groups)
	for _, g := range groups {
		writeGroup(w, g)
	}
	writeSlope(w, groups)
}

func writeGroup(w *strings.Builder, g *loadGroup) {
	title := g.label
	if title == "" {
		title = "load"
	}
	s := g.runs[0].Setup
	fmt.Fprintf(w, "### %s (%s, %s, %d instance(s))\n\n", title, s.Store, s.Transport, s.Instances)
	fmt.Fprintf(w, "%d %s streams (%d employees) on %d %s instance(s), %s tokens, ", s.Streams, s.Transport,
		s.Employees, s.Instances, s.Store, s.Auth)
	if s.Rate > 0 {
		kind := "persisted"
		if s.Ephemeral {
			kind = "ephemeral"
		}
		fmt.Fprintf(w, "%s %s publishes at %.0f/s for up to %.0fs", kind, s.Mode, s.Rate, s.Duration)
	} else {
		fmt.Fprintf(w, "no publishes (streams only)")
	}
	fmt.Fprintf(w, "; %d run(s):\n\n```sh\n%s\n```\n\n", len(g.runs), g.command)
	fmt.Fprintf(w, "| figure | median | runs |\n|---|---|---|\n")
	figs := slices.Clone(loadFigures)
	for i := range maxServers(g.runs) {
		figs = append(figs, serverFigures(i)...)
	}
	for _, f := range figs {
		if f.get == nil { // connect latency: two figures on one line
			p50 := collect(g.runs, always(func(r Report) float64 { return r.Connect.Latency.P50 }))
			p99 := collect(g.runs, always(func(r Report) float64 { return r.Connect.Latency.P99 }))
			fmt.Fprintf(w, "| %s | %s / %s | %s / %s |\n", f.name, num(median(p50)), num(median(p99)), nums(p50), nums(p99))
			continue
		}
		vals := collect(g.runs, f.get)
		if len(vals) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", f.name, num(median(vals)), nums(vals))
	}
	var problems []string
	for i, r := range g.runs {
		if !r.OK {
			problems = append(problems, fmt.Sprintf("run %d: %s", i+1, strings.Join(r.Problems, "; ")))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\n**Problems**: %s\n", strings.Join(problems, " · "))
	}
	fmt.Fprintln(w)
}

func collect(runs []Report, get func(Report) (float64, bool)) []float64 {
	var out []float64
	for _, r := range runs {
		if v, ok := get(r); ok {
			out = append(out, v)
		}
	}
	return out
}

func nums(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = num(v)
	}
	return strings.Join(s, ", ")
}

func maxServers(runs []Report) int {
	n := 0
	for _, r := range runs {
		n = max(n, len(r.Servers))
	}
	return n
}

// slopePoint is one scenario's median RSS growth for its stream count.
type slopePoint struct {
	streams int
	growth  float64 // bytes
	idle    float64 // bytes
}

// writeSlope fits RSS growth against open streams, over streams-only
// scenarios of one instance with the same transport and store, so memory at
// stream counts this machine cannot reach follows on paper.
func writeSlope(w *strings.Builder, groups []*loadGroup) {
	series := map[string][]slopePoint{}
	for _, g := range groups {
		if p, ok := growthPoint(g); ok {
			s := g.runs[0].Setup
			key := fmt.Sprintf("%s streams, %s store, %s tokens", s.Transport, s.Store, s.Auth)
			series[key] = append(series[key], p)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(series)) {
		pts := series[key]
		if len(pts) < 2 {
			continue
		}
		slices.SortFunc(pts, func(a, b slopePoint) int { return cmp.Compare(a.streams, b.streams) })
		slope, intercept := fitLine(pts)
		fmt.Fprintf(w, "### Memory per stream: %s\n\n| streams | RSS growth (MiB) | bytes per stream |\n|---|---|---|\n", key)
		for _, p := range pts {
			fmt.Fprintf(w, "| %d | %s | %s |\n", p.streams, num(p.growth/(1<<20)), num(p.growth/float64(p.streams)))
		}
		fmt.Fprintf(w, "\nLeast-squares fit: RSS growth ≈ %s bytes/stream × streams %+.1f MiB. At 100,000 streams: about %s MiB above idle (%s MiB).\n\n",
			num(slope), intercept/(1<<20), num((slope*100_000+intercept)/(1<<20)), num(pts[0].idle/(1<<20)))
	}
}

// growthPoint is a streams-only scenario's median RSS growth (one instance,
// no publishes); ok is false for any other scenario.
func growthPoint(g *loadGroup) (slopePoint, bool) {
	s := g.runs[0].Setup
	if s.Rate > 0 || s.Instances != 1 {
		return slopePoint{}, false
	}
	growth := collect(g.runs, func(r Report) (float64, bool) {
		if len(r.Servers) != 1 || r.Servers[0].RSSIdle == 0 {
			return 0, false
		}
		return float64(r.Servers[0].RSSStreams) - float64(r.Servers[0].RSSIdle), true
	})
	idle := collect(g.runs, func(r Report) (float64, bool) {
		if len(r.Servers) != 1 {
			return 0, false
		}
		return float64(r.Servers[0].RSSIdle), true
	})
	if len(growth) == 0 {
		return slopePoint{}, false
	}
	return slopePoint{streams: s.Streams, growth: median(growth), idle: median(idle)}, true
}

// fitLine is ordinary least squares of growth on streams.
func fitLine(pts []slopePoint) (slope, intercept float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(pts))
	for _, p := range pts {
		x, y := float64(p.streams), p.growth
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / den
	return slope, (sy - slope*sx) / n
}
