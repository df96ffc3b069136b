package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is a run's outcome: printed as a table, then as one JSON line (the
// last line of stdout, for scripts).
type Report struct {
	Tool     string         `json:"tool"`
	Format   int            `json:"format"`
	Label    string         `json:"label,omitempty"`
	Time     string         `json:"time"`
	Command  string         `json:"command"`
	Setup    Setup          `json:"setup"`
	Connect  ConnectSummary `json:"connect"`
	Publish  *PublishReport `json:"publish,omitempty"`
	Delivery DeliveryReport `json:"delivery"`
	Servers  []ServerReport `json:"servers,omitempty"`
	Client   ClientReport   `json:"client"`
	Issuer   *IssuerReport  `json:"issuer,omitempty"`
	// Retention is set by runs with --old-rows.
	Retention *RetentionReport `json:"retention,omitempty"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures just before
	// the run: how busy the machine was with other work.
	LoadAvg string `json:"loadavg,omitempty"`
	// Interrupted runs were stopped (SIGINT) before the end: deliveries in
	// flight count as lost.
	Interrupted bool     `json:"interrupted,omitempty"`
	OK          bool     `json:"ok"`
	Problems    []string `json:"problems,omitempty"`
}

// Setup is what was run.
type Setup struct {
	Transport   string   `json:"transport"`
	Mode        string   `json:"mode"`
	Store       string   `json:"store"`
	Auth        string   `json:"auth"`
	Streams     int      `json:"streams"`
	Employees   int      `json:"employees"`
	Roles       int      `json:"roles,omitempty"`
	Instances   int      `json:"instances"`
	Processes   int      `json:"processes"`
	SourceAddrs []string `json:"source_addrs"`
	Rate        float64  `json:"rate"`
	Duration    float64  `json:"duration_s"`
	Ephemeral   bool     `json:"ephemeral"`
	Spawned     bool     `json:"spawned"`
	FileLimit   uint64   `json:"file_limit"`
	Publishers  int      `json:"publishers"`
}

// ConnectSummary is the ramp.
type ConnectSummary struct {
	Attempted   int            `json:"attempted"`
	Opened      int            `json:"opened"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors,omitempty"`
	RampSeconds float64        `json:"ramp_s"`
	PerSecond   float64        `json:"per_second"`
	Latency     Summary        `json:"latency"`
}

// ServerReport is one Herald process's memory and CPU.
type ServerReport struct {
	URL     string `json:"url"`
	PID     int    `json:"pid,omitempty"`
	Streams int    `json:"streams"`
	// RSS idle (before streams), with the streams open (after the ramp and
	// --settle, before publishing), at the end, and the peak.
	RSSIdle        uint64  `json:"rss_idle_bytes,omitempty"`
	RSSStreams     uint64  `json:"rss_streams_bytes,omitempty"`
	RSSEnd         uint64  `json:"rss_end_bytes,omitempty"`
	HWM            uint64  `json:"rss_peak_bytes,omitempty"`
	BytesPerStream float64 `json:"bytes_per_stream,omitempty"`
	Threads        int     `json:"threads,omitempty"`
	// CPU seconds during the ramp and during publishing + drain.
	CPURamp         float64            `json:"cpu_ramp_s"`
	CPURun          float64            `json:"cpu_run_s"`
	CPUPerConnectMs float64            `json:"cpu_per_connect_ms,omitempty"`
	CPURunPerStream float64            `json:"cpu_run_per_stream_ms,omitempty"`
	CPUPerPublishUs float64            `json:"cpu_per_publish_us,omitempty"`
	CPUPerEventUs   float64            `json:"cpu_per_event_us,omitempty"`
	Metrics         map[string]float64 `json:"metrics,omitempty"`
}

// ClientReport is the bench's own cost (it shares the machine).
type ClientReport struct {
	CPUSeconds float64 `json:"cpu_s"`
}

// IssuerReport says how often the server fetched the bench issuer's keys.
type IssuerReport struct {
	URL       string `json:"url"`
	Discovery int64  `json:"discovery_fetches"`
	KeySets   int64  `json:"jwks_fetches"`
}

// judge sets OK and lists what went wrong. Loss, duplicates and
// cross-delivery fail a run; connect failures and publish errors are
// problems too, since the figures then describe a different load.
func (r *Report) judge() {
	d := r.Delivery
	if r.Interrupted {
		r.Problems = append(r.Problems, "interrupted before the end")
	}
	check := func(bad bool, format string, a ...any) {
		if bad {
			r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
		}
	}
	check(d.Lost > 0, "%d events lost (streams %v…)", d.Lost, d.LossyStreams)
	check(d.Duplicated > 0, "%d events duplicated", d.Duplicated)
	check(d.CrossDelivered > 0, "%d events cross-delivered", d.CrossDelivered)
	check(d.Unexpected > 0, "%d events received for publishes that were not accepted", d.Unexpected)
	check(d.Disorder > 0, "%d persisted events out of order", d.Disorder)
	check(r.Connect.Failed > 0, "%d streams failed to connect: %v", r.Connect.Failed, r.Connect.Errors)
	if p := r.Publish; p != nil {
		check(p.Failed+p.Uncertain > 0, "%d publishes failed, %d unanswered: %v", p.Failed, p.Uncertain, p.Errors)
	}
	if rt := r.Retention; rt != nil {
		check(rt.Left < 0, "the old rows left at the end could not be counted")
		check(rt.Retention && rt.Left > 0, "%d of the %d old notifications were still stored at the end: the sweep did not finish within the run", rt.Left, rt.OldRows)
	}
	r.OK = len(r.Problems) == 0
}

// writeReport prints the table, then the JSON line.
func writeReport(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	s := r.Setup
	fmt.Fprintln(tw, "herald-bench\t")
	row("setup", "%d %s streams (%d employees) on %d %s instance(s), %s tokens, %d process(es), sources %s",
		s.Streams, s.Transport, s.Employees, s.Instances, s.Store, s.Auth, s.Processes, strings.Join(s.SourceAddrs, ","))
	c := r.Connect
	row("connect", "%d opened, %d failed in %.2fs: %.0f streams/s", c.Opened, c.Failed, c.RampSeconds, c.PerSecond)
	row("  per connect", "%s", latencyRow(c.Latency))
	if len(c.Errors) > 0 {
		row("  errors", "%s", countsRow(c.Errors))
	}
	if p := r.Publish; p != nil {
		kind := "persisted"
		if s.Ephemeral {
			kind = "ephemeral"
		}
		row("publish", "%s %s: %d ok, %d failed, %d unanswered of %d planned; %.1f/s (target %.0f/s), lag max %.1fms",
			kind, s.Mode, p.OK, p.Failed, p.Uncertain, p.Planned, p.Achieved, p.Target, p.LagMax)
		row("  request", "%s", latencyRow(p.Latency))
		row("  recipients", "%d", p.Recipients)
		if len(p.Errors) > 0 {
			row("  errors", "%s", countsRow(p.Errors))
		}
	}
	if r.Publish != nil {
		d := r.Delivery
		row("delivery", "%d received of %d expected over %d streams; %.0f events/s", d.Received, d.Expected, d.Streams, d.PerSecond)
		row("  publish→receive", "%s", latencyRow(d.Latency))
		if d.LastDelivery != nil {
			row("  to last stream", "%s", latencyRow(*d.LastDelivery))
		}
		row("  checks", "lost %d, duplicated %d, cross-delivered %d, unexpected %d, out of order %d, stream drops %d",
			d.Lost, d.Duplicated, d.CrossDelivered, d.Unexpected, d.Disorder, d.Drops)
	}
	if rt := r.Retention; rt != nil {
		state := "on"
		if !rt.Retention {
			state = "off (RETENTION=0)"
		}
		row("retention", "%s; %d old notifications stored first, %d left at the end", state, rt.OldRows, rt.Left)
		row("  sweep", "deleted %.0f rows before publishing, %.0f while publishing (sweeping %.0fs of %.0fs), %.0f in all",
			rt.DeletedBefore, rt.DeletedDuring, rt.SweepSeconds, rt.PublishSeconds, rt.DeletedTotal)
	}
	for _, sv := range r.Servers {
		serverRows(row, sv)
	}
	row("client", "cpu %.2fs (bench processes)", r.Client.CPUSeconds)
	if r.Issuer != nil {
		row("issuer", "%s: %d discovery, %d key set fetches", r.Issuer.URL, r.Issuer.Discovery, r.Issuer.KeySets)
	}
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED: " + strings.Join(r.Problems, "; ")
	}
	row("verdict", "%s", verdict)
	if err := tw.Flush(); err != nil {
		return err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

// serverRows prints one server's memory and CPU.
func serverRows(row func(k, format string, a ...any), sv ServerReport) {
	row("server "+sv.URL, "pid %d, %d streams", sv.PID, sv.Streams)
	if sv.RSSIdle > 0 {
		row("  rss", "idle %s, with streams %s, end %s, peak %s: %.0f bytes/stream",
			mib(sv.RSSIdle), mib(sv.RSSStreams), mib(sv.RSSEnd), mib(sv.HWM), sv.BytesPerStream)
		row("  cpu", "ramp %.2fs (%.3f ms/connect), run %.2fs (%.3f ms/stream, %.1f µs/publish, %.2f µs/event)",
			sv.CPURamp, sv.CPUPerConnectMs, sv.CPURun, sv.CPURunPerStream, sv.CPUPerPublishUs, sv.CPUPerEventUs)
	}
	if len(sv.Metrics) > 0 {
		row("  metrics", "%s", floatsRow(sv.Metrics))
	}
}

func latencyRow(s Summary) string {
	return fmt.Sprintf("n=%d p50 %.3fms p90 %.3fms p99 %.3fms p99.9 %.3fms max %.3fms", s.Count, s.P50, s.P90, s.P99, s.P999, s.Max)
}

func countsRow(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func floatsRow(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
