package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// sample is every server process's state at one moment (nil entries for
// processes /proc could not read).
type sample []*procSample

func (r *runner) sample() sample {
	out := make(sample, len(r.pids))
	for i, pid := range r.pids {
		if s, err := sampleProc(pid); err == nil {
			out[i] = &s
		}
	}
	return out
}

// measure runs the phases: idle sample, ramp, loaded sample, publishing,
// drain, end sample, and the final check of every stream.
func (r *runner) measure(ctx context.Context) (Report, error) {
	_ = sleepFor(ctx, r.cfg.Settle)
	idle := r.sample()
	if err := r.startGroups(); err != nil {
		return Report{}, err
	}
	if err := r.prepareAll(ctx); err != nil {
		return Report{}, err
	}
	preRamp := r.sample()
	r.log.Info("opening streams", "streams", r.cfg.Streams, "transport", r.cfg.Transport, "processes", len(r.groups))
	conn, err := r.openAll(ctx)
	if err != nil {
		return Report{}, err
	}
	ramped := r.sample()
	r.log.Info("streams open", "opened", conn.Opened, "failed", conn.Failed,
		"ramp", time.Duration(conn.EndNs-conn.StartNs).Round(time.Millisecond))
	if err := r.checkServers(); err != nil {
		return Report{}, err
	}
	_ = sleepFor(ctx, r.cfg.Settle)
	loaded := r.sample()
	metrics := make([]map[string]float64, len(r.urls))
	for i, u := range r.urls {
		metrics[i] = scrapeMetrics(ctx, r.client, u, "herald_streams_open", "go_goroutines",
			"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes")
	}

	var watch *sweepWatch
	if r.cfg.OldRows > 0 {
		watch = r.watchSweep(ctx)
	}
	var pub *PublishReport
	log := newPublishLog(0)
	plan := r.publishPlan()
	pubStart, pubEnd := time.Now(), time.Now()
	if plan.total() > 0 {
		p := newPublisher(plan)
		rep := r.publish(ctx, p)
		pubEnd = time.Now()
		pub, log = &rep, p.log
		r.drain(ctx, log, conn.FailedStreams)
	}
	if watch != nil {
		watch.close()
	}
	// Interrupted while publishing (SIGINT): still collect and report what
	// was measured, within a bounded time, marked as interrupted.
	interrupted := ctx.Err() != nil
	if interrupted {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	end := r.sample()
	if err := r.checkServers(); err != nil {
		return Report{}, err
	}
	res, err := r.finishAll(ctx)
	if err != nil {
		return Report{}, err
	}
	delivery := analyze(res, log, pub)
	rep := r.report(conn, pub, delivery, res)
	rep.Servers = r.serverReports(phases{idle, preRamp, ramped, loaded, end}, metrics, conn, log, res)
	rep.Interrupted = interrupted
	if watch != nil {
		ret := watch.summarize(pubStart, pubEnd)
		ret.OldRows, ret.Retention, ret.Left = r.cfg.OldRows, retentionOn(r.cfg.ServerEnv), -1
		if left, err := oldRowsLeft(ctx, r.dsn); err != nil {
			r.log.Warn("counting the old rows left failed", "err", err)
		} else {
			ret.Left = left
		}
		rep.Retention = &ret
	}
	rep.judge()
	return rep, nil
}

func (r *runner) publishPlan() publishPlan {
	return publishPlan{
		RunID: r.runID, URLs: r.urls, Token: r.pubTok, Mode: r.cfg.Mode, Ephemeral: r.cfg.Ephemeral,
		Rate: r.cfg.Rate, Duration: r.cfg.Duration, Count: r.cfg.Count, Workers: r.cfg.Publishers,
		Directory: r.directory(), Timeout: r.cfg.PubTimeout,
	}
}

// publish runs the publisher, printing progress every second.
func (r *runner) publish(ctx context.Context, p *publisher) PublishReport {
	r.log.Info("publishing", "mode", r.cfg.Mode, "rate", r.cfg.Rate, "planned", p.plan.total(), "publishers", p.plan.Workers)
	progressCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressCtx.Done():
				return
			case <-t.C:
				fmt.Fprintf(r.stderr, "  published %d/%d, received %d\n", p.done.Load(), p.plan.total(), r.received())
			}
		}
	}()
	rep := p.run(ctx)
	stop()
	<-done
	r.log.Info("published", "ok", rep.OK, "failed", rep.Failed, "uncertain", rep.Uncertain,
		"achieved_rate", fmt.Sprintf("%.1f", rep.Achieved))
	return rep
}

// drain waits until the streams have counted every expected event, or
// --drain has passed.
func (r *runner) drain(ctx context.Context, log *publishLog, failed []int) {
	failedSet := map[int]bool{}
	for _, k := range failed {
		failedSet[k] = true
	}
	ex := log.index()
	dir := r.directory()
	var want int64
	for k := range r.cfg.Streams {
		if !failedSet[k] {
			emp := dir.forStream(k)
			must, _ := ex.forStream(emp, dir.role(emp))
			want += int64(len(must))
		}
	}
	deadline := time.Now().Add(r.cfg.Drain)
	for r.received() < want && time.Now().Before(deadline) {
		if sleepFor(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
	r.log.Info("drained", "received", r.received(), "expected", want)
}

// checkServers fails the run when a spawned server has died.
func (r *runner) checkServers() error {
	for _, s := range r.servers {
		if !s.alive() {
			return fmt.Errorf("%w (%v):\n%s", errServerDied, s.err, s.logs.String())
		}
	}
	return nil
}

// phases are the server samples of one run: before the streams, right
// before the ramp (tokens minted, cache warmed), after it, after --settle,
// and at the end.
type phases struct{ idle, preRamp, ramped, loaded, end sample }

// serverReports works out, per server, memory per stream and CPU per
// connect, per publish and per delivered event. Streams and publishes are
// dealt round robin over the instances, so each one's share is exact.
func (r *runner) serverReports(ph phases, metrics []map[string]float64, conn ConnectReport, log *publishLog, res GroupResult) []ServerReport {
	n := len(r.urls)
	streams := make([]int, n)
	events := make([]int64, n)
	for _, s := range res.Streams {
		if s.Connected {
			streams[s.Index%n]++
			events[s.Index%n] += int64((&seqSet{ranges: s.Got}).Len())
		}
	}
	publishes := make([]int, n)
	for i, o := range log.outcomes {
		if o == outcomeOK {
			publishes[i%n]++
		}
	}
	var out []ServerReport
	for i, u := range r.urls {
		sr := ServerReport{URL: u, Streams: streams[i], Metrics: metrics[i]}
		if i < len(r.pids) {
			sr.PID = r.pids[i]
		}
		if i < len(ph.end) && ph.complete(i) {
			sr.fill(ph, i, publishes[i], events[i])
		}
		out = append(out, sr)
	}
	return out
}

// complete reports whether every sample of server i was read.
func (ph phases) complete(i int) bool {
	return ph.idle[i] != nil && ph.preRamp[i] != nil && ph.ramped[i] != nil && ph.loaded[i] != nil && ph.end[i] != nil
}

// fill computes server i's figures from its samples.
func (sr *ServerReport) fill(ph phases, i int, publishes int, events int64) {
	idle, preRamp, ramped, loaded, end := ph.idle[i], ph.preRamp[i], ph.ramped[i], ph.loaded[i], ph.end[i]
	sr.RSSIdle, sr.RSSStreams, sr.RSSEnd, sr.HWM = idle.RSS, loaded.RSS, end.RSS, end.HWM
	sr.Threads = end.Threads
	if sr.Streams > 0 {
		sr.BytesPerStream = (float64(loaded.RSS) - float64(idle.RSS)) / float64(sr.Streams)
	}
	sr.CPURamp = ramped.CPUSeconds - preRamp.CPUSeconds
	sr.CPURun = end.CPUSeconds - loaded.CPUSeconds
	if sr.Streams > 0 {
		sr.CPUPerConnectMs = sr.CPURamp / float64(sr.Streams) * 1e3
		sr.CPURunPerStream = sr.CPURun / float64(sr.Streams) * 1e3
	}
	if publishes > 0 {
		sr.CPUPerPublishUs = sr.CPURun / float64(publishes) * 1e6
	}
	if events > 0 {
		sr.CPUPerEventUs = sr.CPURun / float64(events) * 1e6
	}
}

// report assembles everything but the servers.
func (r *runner) report(conn ConnectReport, pub *PublishReport, delivery DeliveryReport, res GroupResult) Report {
	rep := Report{
		Tool: "herald-bench", Format: 1, Label: r.cfg.Label, Time: time.Now().UTC().Format(time.RFC3339), Command: r.command,
		Setup: Setup{
			Transport: r.cfg.Transport, Mode: r.cfg.Mode, Store: r.store, Auth: r.auth.Kind,
			Streams: r.cfg.Streams, Employees: r.cfg.Employees, Roles: r.cfg.Roles, Instances: len(r.urls),
			Processes: len(r.groups), SourceAddrs: r.cfg.SourceAddrs, Rate: r.cfg.Rate,
			Duration: r.cfg.Duration.Seconds(), Ephemeral: r.cfg.Ephemeral, Spawned: r.cfg.Spawn,
			FileLimit: r.limit.Soft, Publishers: r.cfg.Publishers,
		},
		Connect:  summarizeConnect(conn),
		Publish:  pub,
		Delivery: delivery,
		Client:   ClientReport{CPUSeconds: res.CPUSeconds + selfCPUSeconds()},
	}
	if r.issuer != nil {
		rep.Issuer = &IssuerReport{URL: r.issuer.url, Discovery: r.issuer.discovery.Load(), KeySets: r.issuer.jwks.Load()}
	}
	slices.Sort(rep.Setup.SourceAddrs)
	return rep
}

func summarizeConnect(c ConnectReport) ConnectSummary {
	s := ConnectSummary{Attempted: c.Attempted, Opened: c.Opened, Failed: c.Failed, Errors: c.Errors, Latency: c.Latency.Summarize()}
	if c.EndNs > c.StartNs {
		s.RampSeconds = float64(c.EndNs-c.StartNs) / 1e9
		s.PerSecond = float64(c.Opened) / s.RampSeconds
	}
	return s
}
