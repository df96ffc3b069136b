package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// streamSet is the streams one process holds: it opens them (measuring each
// connect), reads them (checking and timing each event) and, at the end,
// reports what every stream received. The worker process and the
// single-process run both use it.
type streamSet struct {
	cfg     workerConfig
	log     *slog.Logger
	urls    []*url.URL
	dialers []*dialer        // one per source address
	minter  *minter          // fresh tokens for reconnects
	tokens  map[int64]string // per employee, minted by Prepare
	streams []*benchStream

	latency *Hist          // publish → receive, every counted event
	last    []atomic.Int64 // per publish number: the slowest delivery (ns), role and broadcast modes
	events  atomic.Int64   // counted events (new, for this stream)
	other   sync.Map       // event name → *atomic.Int64, for events without a bench payload
	firstNs atomic.Int64   // first counted event's receive time
	lastNs  atomic.Int64   // last counted event's receive time
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// benchStream is one stream. Its goroutine owns every field but conn after
// the first connect; Finish reads them once the goroutine has ended.
type benchStream struct {
	index     int
	url       *url.URL
	dialer    *dialer
	token     string
	ledger    ledger
	connected bool
	drops     int // times the server ended the stream and the bench reconnected
	err       string
}

func newStreamSet(cfg workerConfig, log *slog.Logger) (*streamSet, error) {
	s := &streamSet{cfg: cfg, log: log, latency: NewHist()}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("parse url %q: %w", raw, err)
		}
		s.urls = append(s.urls, u)
	}
	for _, a := range cfg.SourceAddrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("source address %q is not an IP", a)
		}
		s.dialers = append(s.dialers, newDialer(ip, cfg.ConnectTimeout))
	}
	if len(s.urls) == 0 || len(s.dialers) == 0 {
		return nil, fmt.Errorf("stream set needs urls and source addresses")
	}
	if cfg.Mode != "unicast" && cfg.MaxPublishes > 0 {
		s.last = make([]atomic.Int64, cfg.MaxPublishes)
	}
	return s, nil
}

// Prepare mints the streams' tokens and, with WarmCache, warms the
// server's login cache: the work that must not count in the ramp. Every
// group prepares before any opens, so their ramps start together.
func (s *streamSet) Prepare(ctx context.Context) error {
	m, err := newMinter(s.cfg.Auth)
	if err != nil {
		return err
	}
	s.minter = m
	tokens, err := mintTokens(ctx, s.cfg, m)
	if err != nil {
		return err
	}
	if s.cfg.WarmCache {
		s.warm(ctx, tokens)
	}
	s.tokens = tokens
	return nil
}

// Open opens every stream of the set (preparing first if that was not
// done), at most ConnectConcurrency at a time and, with ConnectRate, no
// faster than that. It returns when each stream has tried once; the
// streams then run until Finish (or ctx ends).
func (s *streamSet) Open(ctx context.Context) (ConnectReport, error) {
	if s.tokens == nil {
		if err := s.Prepare(ctx); err != nil {
			return ConnectReport{}, err
		}
	}
	tokens := s.tokens
	runCtx, stop := context.WithCancel(ctx)
	s.stop = stop
	ramp := &ramp{rep: ConnectReport{Latency: NewHist(), Errors: map[string]int{}},
		sem: make(chan struct{}, max(1, s.cfg.ConnectConc))}
	var interval time.Duration
	if s.cfg.ConnectRate > 0 {
		interval = time.Duration(float64(time.Second) / s.cfg.ConnectRate)
	}
	start := time.Now()
	ramp.rep.StartNs = start.UnixNano()
	for k := s.cfg.From; k < s.cfg.To; k++ {
		if interval > 0 && sleepUntil(ctx, start.Add(time.Duration(k-s.cfg.From)*interval)) != nil {
			break
		}
		select {
		case ramp.sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		emp := s.cfg.Directory.forStream(k)
		st := &benchStream{
			index:  k,
			url:    s.urls[k%len(s.urls)],
			dialer: s.dialers[k%len(s.dialers)],
			token:  tokens[emp],
			ledger: ledger{employee: emp, role: s.cfg.Directory.role(emp)},
		}
		s.streams = append(s.streams, st)
		ramp.ready.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.connectAndRead(runCtx, st, ramp)
		}()
	}
	ramp.ready.Wait()
	if err := ctx.Err(); err != nil {
		return ramp.rep, fmt.Errorf("open streams: %w", err)
	}
	return ramp.rep, nil
}

// ramp is the state of Open shared by the connecting goroutines.
type ramp struct {
	sem   chan struct{}  // a slot per connect in progress
	ready sync.WaitGroup // one per stream until its first connect ends
	mu    sync.Mutex     // guards rep
	rep   ConnectReport
}

// connectAndRead is one stream's goroutine: the first connect (timed, its
// slot released and its outcome counted as soon as it ends), then reading.
func (s *streamSet) connectAndRead(ctx context.Context, st *benchStream, ramp *ramp) {
	t0 := time.Now()
	conn, err := st.dialer.open(ctx, s.cfg.Transport, st.url, st.token, -1)
	took := time.Since(t0)
	ramp.mu.Lock()
	rep := &ramp.rep
	rep.Attempted++
	if err != nil {
		rep.Failed++
		rep.Errors[reason(err)]++
		rep.FailedStreams = append(rep.FailedStreams, st.index)
		st.err = err.Error()
	} else {
		rep.Opened++
		rep.Latency.Record(took)
	}
	rep.EndNs = max(rep.EndNs, time.Now().UnixNano())
	ramp.mu.Unlock()
	<-ramp.sem
	ramp.ready.Done()
	if err != nil {
		return
	}
	st.connected = true
	s.read(ctx, st, conn)
}

// warm makes one cheap authenticated request (GET /notifications?limit=1)
// per employee of the set, on the instance its first stream will use, so
// the server's login cache holds every employee when the ramp starts. It
// uses tokens of its own, minted a second earlier, so the streams' tokens
// reach the server new: the server also remembers verified tokens, and the
// ramp must measure full verification. Failures only mean a colder cache;
// the ramp reports what matters.
func (s *streamSet) warm(ctx context.Context, streamTokens map[int64]string) {
	tokens := make(map[int64]string, len(streamTokens))
	then := time.Now().Add(-time.Second)
	for emp := range streamTokens {
		t, err := s.minter.employee(emp, then)
		if err != nil {
			return
		}
		tokens[emp] = t
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	seen := map[int64]bool{}
	for k := s.cfg.From; k < s.cfg.To; k++ {
		emp := s.cfg.Directory.forStream(k)
		if seen[emp] {
			continue
		}
		seen[emp] = true
		u := s.urls[k%len(s.urls)].String() + "/notifications?limit=1"
		g.Go(func() error {
			_, _, _ = doJSON(ctx, client, http.MethodGet, u, tokens[emp], nil)
			return nil
		})
	}
	_ = g.Wait()
}

// read consumes a stream until ctx ends. When the server ends the stream
// (slow consumer, restart), it reconnects, resuming after the last id for
// persisted runs, and counts the drop: a client would do the same, and the
// run still tells whether anything was lost.
func (s *streamSet) read(ctx context.Context, st *benchStream, conn streamConn) {
	backoff := 100 * time.Millisecond
	for {
		err := s.consume(ctx, st, conn)
		conn.close()
		if ctx.Err() != nil {
			return
		}
		st.drops++
		st.err = err.Error()
		for {
			if sleepFor(ctx, backoff) != nil {
				return
			}
			resume := s.resumePoint(st)
			// A fresh token, as a client does after token_expired; minting
			// is cheap next to a reconnect.
			if tok, err := s.minter.employee(st.ledger.employee, time.Now()); err == nil {
				st.token = tok
			}
			conn, err = st.dialer.open(ctx, s.cfg.Transport, st.url, st.token, resume)
			if err == nil {
				break
			}
			st.err = err.Error()
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// resumePoint is where a dropped stream resumes, as EventSource would: after
// the last id it has seen. Before any id, EventSource reconnects fresh and
// misses what was published meanwhile; the bench does the same, except on
// a directory it has just created, where 0 is known to be the position.
// Ephemeral runs have no ids to resume from.
func (s *streamSet) resumePoint(st *benchStream) int64 {
	switch {
	case s.cfg.Ephemeral:
		return -1
	case st.ledger.lastSeq > 0 || s.cfg.FreshDirectory:
		return st.ledger.lastSeq
	}
	return -1
}

// consume reads events until the stream fails.
func (s *streamSet) consume(ctx context.Context, st *benchStream, conn streamConn) error {
	for {
		ev, err := conn.next(ctx)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if ev.foreign(s.cfg.RunID) {
			s.countOther("foreign")
			ev.ok = false
		}
		if !ev.ok {
			s.countOther(ev.name)
			if ev.seq > st.ledger.lastSeq {
				st.ledger.lastSeq = ev.seq // replay_truncated moves the position
			}
			continue
		}
		n := *ev.bench.N
		if !st.ledger.record(n, ev.seq, ev.bench.target()) {
			continue
		}
		lat := now - ev.bench.T
		s.latency.Record(time.Duration(lat))
		s.events.Add(1)
		s.firstNs.CompareAndSwap(0, now)
		atomicMax(&s.lastNs, now)
		if int(n) < len(s.last) {
			atomicMax(&s.last[n], lat)
		}
	}
}

func (s *streamSet) countOther(name string) {
	v, _ := s.other.LoadOrStore(name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Received returns how many events the set has counted so far.
func (s *streamSet) Received() int64 { return s.events.Load() }

// Finish stops every stream and reports what each received.
func (s *streamSet) Finish() GroupResult {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	res := GroupResult{Latency: s.latency, Events: s.events.Load(), Other: map[string]int64{},
		FirstEventNs: s.firstNs.Load(), LastEventNs: s.lastNs.Load()}
	for _, st := range s.streams {
		res.Streams = append(res.Streams, StreamReport{
			Index: st.index, Employee: st.ledger.employee, Role: st.ledger.role, Connected: st.connected,
			Got: st.ledger.got.ranges, Dups: st.ledger.dups, Cross: st.ledger.cross,
			Disorder: st.ledger.disorder, Drops: st.drops, Err: st.err,
		})
	}
	for n := range s.last {
		if v := s.last[n].Load(); v > 0 {
			res.LastDelivery = append(res.LastDelivery, [2]int64{int64(n), v})
		}
	}
	s.other.Range(func(k, v any) bool {
		res.Other[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return res
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error { return sleepFor(ctx, time.Until(t)) }

// sleepFor waits d or until ctx ends.
func sleepFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
