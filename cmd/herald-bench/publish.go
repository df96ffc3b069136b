package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// publishPlan says what to publish.
type publishPlan struct {
	RunID     string
	URLs      []string
	Token     string
	Mode      string // unicast, role, broadcast
	Ephemeral bool
	Rate      float64       // publishes per second
	Duration  time.Duration // how long to publish
	Count     int           // stop after this many (0: rate × duration)
	Workers   int           // concurrent publishers (keep-alive connections)
	Directory employees
	Timeout   time.Duration // per request
}

// total is how many publishes the plan makes at most.
func (p publishPlan) total() int {
	n := int(p.Rate * p.Duration.Seconds())
	if p.Count > 0 && (p.Count < n || n == 0) {
		n = p.Count
	}
	return n
}

// PublishReport is what the publishers saw.
type PublishReport struct {
	Target    float64        `json:"target_rate"`
	Planned   int            `json:"planned"`
	Sent      int            `json:"sent"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Uncertain int            `json:"uncertain"`
	Errors    map[string]int `json:"errors,omitempty"`
	// Seconds is from the first publish to the last answer; Achieved is
	// accepted publishes per second of the dispatch window.
	Seconds    float64 `json:"seconds"`
	Achieved   float64 `json:"achieved_rate"`
	Recipients int64   `json:"recipients"`
	// Latency is the publish request's round trip (POST → 201).
	Latency Summary `json:"request_latency"`
	// LagMax is how far the schedule slipped: the latest a publish left
	// after its due time (the pool was busy).
	LagMax float64 `json:"schedule_lag_max_ms"`
	// StartNs and EndNs bound the publishing (Unix nanoseconds).
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
}

// publisher runs a plan: a scheduler hands publish numbers out at the rate,
// a pool of goroutines sends them over keep-alive connections. The schedule
// is open-loop: a slow server makes requests queue (and the lag is
// reported), it does not lower the rate asked for.
type publisher struct {
	plan    publishPlan
	client  *http.Client
	log     *publishLog
	latency *Hist

	mu         sync.Mutex // guards errors
	errors     map[string]int
	recipients atomic.Int64
	lagMax     atomic.Int64
	done       atomic.Int64 // publishes answered (or failed), for progress
}

func newPublisher(plan publishPlan) *publisher {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: plan.Workers,
		MaxConnsPerHost:     plan.Workers,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &publisher{
		plan: plan, client: &http.Client{Transport: tr}, log: newPublishLog(plan.total()),
		latency: NewHist(), errors: map[string]int{},
	}
}

// run publishes until the plan is done or ctx ends, and waits for every
// request in flight.
func (p *publisher) run(ctx context.Context) PublishReport {
	total := p.plan.total()
	jobs := make(chan publishJob, p.plan.Workers*2)
	var wg sync.WaitGroup
	for w := range p.plan.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for j := range jobs {
				atomicMax(&p.lagMax, int64(time.Since(j.due)))
				p.publish(ctx, rng, j.n)
				p.done.Add(1)
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / p.plan.Rate)
	sent := 0
	dispatched := start
	for sent < total && ctx.Err() == nil {
		// Hand out every publish that is due; then sleep until the next one.
		due := min(total, int(time.Since(start)/interval)+1)
		for ; sent < due; sent++ {
			select {
			case jobs <- publishJob{n: sent, due: start.Add(time.Duration(sent) * interval)}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		dispatched = time.Now()
		if sent < total {
			_ = sleepUntil(ctx, start.Add(time.Duration(sent)*interval))
		}
	}
	close(jobs)
	// The rate achieved is over the dispatch window: a server that keeps up
	// gets every publish handed out on time, at start + k·interval.
	window := dispatched.Sub(start) + interval
	wg.Wait()
	end := time.Now()
	rep := PublishReport{
		Target: p.plan.Rate, Planned: total, Errors: p.errors, Seconds: end.Sub(start).Seconds(),
		Recipients: p.recipients.Load(), Latency: p.latency.Summarize(), LagMax: ms(time.Duration(p.lagMax.Load())),
		StartNs: start.UnixNano(), EndNs: end.UnixNano(),
	}
	p.tally(&rep)
	rep.Achieved = float64(rep.OK) / window.Seconds()
	return rep
}

// tally counts the outcomes of the log into rep.
func (p *publisher) tally(rep *PublishReport) {
	for _, o := range p.log.outcomes {
		switch o {
		case outcomeOK:
			rep.OK++
		case outcomeFailed:
			rep.Failed++
		case outcomeUncertain:
			rep.Uncertain++
		}
	}
	rep.Sent = rep.OK + rep.Failed + rep.Uncertain
}

// publishJob is one publish handed to the pool, with the time it was due.
type publishJob struct {
	n   int
	due time.Time
}

// publish sends publish number n to a target the mode picks.
func (p *publisher) publish(ctx context.Context, rng *rand.Rand, n int) {
	var t target
	switch p.plan.Mode {
	case "broadcast":
		t.All = true
	case "role":
		t.Role = roleName(rng.IntN(max(1, p.plan.Directory.Roles)))
	default:
		t.Employee = p.plan.Directory.id(rng.IntN(p.plan.Directory.Count))
	}
	p.log.targets[n] = t
	sentAt := time.Now()
	body := publishBody(p.plan.RunID, n, sentAt.UnixNano(), t, p.plan.Ephemeral)
	url := p.plan.URLs[n%len(p.plan.URLs)] + "/notifications"
	ctx, cancel := context.WithTimeout(ctx, p.plan.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		p.fail(n, outcomeFailed, err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.plan.Token)
	resp, err := p.client.Do(req)
	if err != nil {
		// No answer: the server may or may not have stored it.
		p.fail(n, outcomeUncertain, reason(err))
		return
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	p.latency.Record(time.Since(sentAt))
	if err != nil {
		p.fail(n, outcomeUncertain, reason(err))
		return
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		p.fail(n, outcomeFailed, "http "+strconv.Itoa(resp.StatusCode))
		return
	}
	var res struct {
		Recipients int64 `json:"recipients"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		p.fail(n, outcomeUncertain, "undecodable answer")
		return
	}
	p.recipients.Add(res.Recipients)
	p.log.outcomes[n] = outcomeOK
}

func (p *publisher) fail(n int, o outcome, why string) {
	p.log.outcomes[n] = o
	p.mu.Lock()
	p.errors[why]++
	p.mu.Unlock()
}

// publishBody is a publish request whose data says which publish it is, when
// it left and for whom, so every stream can time it and check it.
func publishBody(run string, n int, sentNs int64, t target, ephemeral bool) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"to":{`...)
	switch {
	case t.All:
		b = append(b, `"all":true`...)
	case t.Role != "":
		b = append(b, `"roles":[`...)
		b = strconv.AppendQuote(b, t.Role)
		b = append(b, ']')
	default:
		b = append(b, `"employees":[`...)
		b = strconv.AppendInt(b, t.Employee, 10)
		b = append(b, ']')
	}
	b = append(b, `},"type":"bench.load","title":"bench `...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","data":{"run":`...)
	b = strconv.AppendQuote(b, run)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, sentNs, 10)
	switch {
	case t.All:
		b = append(b, `,"all":true`...)
	case t.Role != "":
		b = append(b, `,"r":`...)
		b = strconv.AppendQuote(b, t.Role)
	default:
		b = append(b, `,"e":`...)
		b = strconv.AppendInt(b, t.Employee, 10)
	}
	b = append(b, '}')
	if ephemeral {
		b = append(b, `,"persist":false`...)
	}
	return append(b, '}')
}
