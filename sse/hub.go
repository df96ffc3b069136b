// Package sse is Herald's stream engine: the room registry (the hub), each
// stream's bounded queue and state machine (replay, live, heartbeat,
// expiry, maximum age, one table of end reasons), the poller that holds idle
// connections without a goroutine, the timer wheel that drives every
// stream's timers, and each transport's framing (SSE, WebSocket).
//
// Delivering an event to a stream never waits: on a taken-over connection
// the hub writes the event's shared bytes with one non-blocking write; when
// the socket cannot take them, the rest waits in a small per-connection
// buffer and later events in the stream's bounded queue. A stream whose
// queue fills is ended (slow consumer): its client reconnects and replays
// from the store. Work that may block (store reads for replay and gap
// filling, writes to a stalled client) runs on a goroutine that exists only
// while there is such work.
package sse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultQueueSize is how many events may wait for one stream while its
	// socket cannot take more. When the queue is full the stream is ended
	// (EndSlowConsumer): the client reconnects and replays what it missed
	// from the store. Delivering never blocks on a stream.
	DefaultQueueSize = 256
	// DefaultMaxStreams is how many streams one employee may hold open on one
	// instance (browser tabs), every transport counted.
	DefaultMaxStreams = 10
	// DefaultMaxInstanceStreams is how many streams one instance holds at
	// most (MAX_STREAMS), every transport counted.
	DefaultMaxInstanceStreams = 100_000
	// DefaultHeartbeat is the keep-alive interval.
	DefaultHeartbeat = 15 * time.Second
	// ReplayLimit is how many stored notifications a connect replays; beyond
	// it the stream sends replay_truncated and continues from the newest.
	ReplayLimit = 1000
	// writeTimeout bounds each blocking write to a client; a client that
	// cannot take a write for this long is gone (EndWriteTimeout).
	writeTimeout = 10 * time.Second
	// storeTimeout bounds a stream's store reads (replay, catch-up).
	storeTimeout = 10 * time.Second
	// retryFirst and retryMax bound the backoff of a replay or catch-up
	// whose store read failed: it is retried until it succeeds.
	retryFirst = time.Second
	retryMax   = 30 * time.Second
)

// Option configures a Hub.
type Option func(*Hub)

// WithQueueSize sets the per-stream queue size (default DefaultQueueSize).
func WithQueueSize(n int) Option { return func(h *Hub) { h.queueSize = positive(n, h.queueSize) } }

// WithMaxStreams sets the per-employee stream limit (default DefaultMaxStreams).
func WithMaxStreams(n int) Option { return func(h *Hub) { h.maxStreams = positive(n, h.maxStreams) } }

// WithMaxInstanceStreams sets the per-instance limit (MAX_STREAMS; default
// DefaultMaxInstanceStreams).
func WithMaxInstanceStreams(n int) Option {
	return func(h *Hub) { h.maxTotal = positive(n, h.maxTotal) }
}

// WithHeartbeat sets the keep-alive interval (default DefaultHeartbeat).
func WithHeartbeat(d time.Duration) Option {
	return func(h *Hub) {
		if d > 0 {
			h.heartbeat = d
		}
	}
}

// WithMaxAge ends streams after d, each with up to ±20% jitter so that
// reconnections spread out (MAX_STREAM_AGE; 0, the default, never).
func WithMaxAge(d time.Duration) Option { return func(h *Hub) { h.maxAge = max(d, 0) } }

// WithSource sets where streams replay from and fill gaps (the store).
// Without one, streams start at the live position and never replay.
func WithSource(src Source) Option { return func(h *Hub) { h.source = src } }

// WrittenFunc is told which stored copies a stream has written to its
// client: the employee's seqs from..to, inclusive (Web Push leaves those
// out). It runs on the writing goroutine, on every write of stored events,
// so it must be cheap and never block.
type WrittenFunc func(employee, from, to int64)

// WithWritten sets the WrittenFunc (none by default).
func WithWritten(f WrittenFunc) Option { return func(h *Hub) { h.written = f } }

// WithGoroutines keeps every stream on a goroutine of its own instead of
// the poller (GOROUTINE_STREAMS; for comparisons). TLS and HTTP/2 streams
// always run on goroutines.
func WithGoroutines(on bool) Option { return func(h *Hub) { h.goroutines = on } }

// WithLogger sets where the engine logs (nothing by default).
func WithLogger(l Logger) Option {
	return func(h *Hub) {
		if l != nil {
			h.log = l
		}
	}
}

func positive(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// Targets selects streams for DeliverTo.
type Targets struct {
	Employees []int64
	Roles     []string
	All       bool
}

type streamSet = map[*stream]struct{}

// Hub is the registry of this instance's open streams and the engine that
// serves them. Its methods are safe for concurrent use. NewHub starts the
// timer wheel and, where supported, the poller; Close ends every stream and
// waits for what the hub started.
//
// Memory matters here (one entry per open stream): an employee's room is a
// small slice (at most maxStreams tabs), and there is no separate set of all
// streams: "all" walks the rooms.
type Hub struct {
	queueSize  int
	maxStreams int
	maxTotal   int
	heartbeat  time.Duration
	maxAge     time.Duration
	source     Source
	written    WrittenFunc
	goroutines bool
	log        Logger
	clock      func() int64 // tests only; nil is the wall clock

	wheel  *wheel
	poller *poller // nil where the platform has none, or with WithGoroutines

	// base is the context of the engine's work (store reads); Close
	// cancels it.
	base    context.Context
	cancel  context.CancelFunc
	running atomic.Int64 // workers and goroutine streams, for Shutdown

	mu        sync.RWMutex // guards employees, roles, streams and closed
	employees map[int64][]*stream
	roles     map[string]streamSet
	streams   int
	closed    bool

	// Socket.IO long-polling sessions by id (sio_session.go).
	sioMu       sync.Mutex // guards sioSessions and sioSwept
	sioSessions map[string]*sioSession
	sioSwept    int64

	closeOnce sync.Once
	stats     Counters
}

// NewHub returns an empty hub and starts its timer wheel and poller.
func NewHub(opts ...Option) *Hub {
	h := &Hub{
		queueSize:  DefaultQueueSize,
		maxStreams: DefaultMaxStreams,
		maxTotal:   DefaultMaxInstanceStreams,
		heartbeat:  DefaultHeartbeat,
		log:        nopLogger{},
		employees:  make(map[int64][]*stream),
		roles:      make(map[string]streamSet),
	}
	for _, o := range opts {
		o(h)
	}
	for t := range h.stats.ended {
		h.stats.ended[t] = make([]atomic.Int64, len(Ends))
	}
	h.base, h.cancel = context.WithCancel(context.Background())
	h.wheel = startWheel(wheelTick(h.heartbeat))
	if !h.goroutines {
		p, err := startPoller(h)
		if err != nil {
			h.log.Warn("no poller; every stream runs on a goroutine", "err", err)
		}
		h.poller = p
	}
	return h
}

// wheelTick is the timer wheel's resolution: fine enough for the heartbeat,
// coarse enough that an idle instance barely wakes.
func wheelTick(heartbeat time.Duration) time.Duration {
	return min(max(heartbeat/10, 5*time.Millisecond), 100*time.Millisecond)
}

// register adds s to the rooms, refusing beyond the limits or after Close.
func (h *Hub) register(s *stream) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return ErrClosed
	case h.streams >= h.maxTotal:
		return ErrInstanceFull
	case len(h.employees[s.employee]) >= h.maxStreams:
		return ErrTooManyStreams
	}
	h.employees[s.employee] = append(h.employees[s.employee], s)
	for _, r := range s.roles {
		if h.roles[r] == nil {
			h.roles[r] = make(streamSet)
		}
		h.roles[r][s] = struct{}{}
	}
	h.streams++
	return nil
}

// unregister removes s from the rooms, once.
func (h *Hub) unregister(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.employees[s.employee]
	i := slices.Index(room, s)
	if i < 0 {
		return
	}
	last := len(room) - 1
	room[i] = room[last]
	room[last] = nil
	if last == 0 {
		delete(h.employees, s.employee)
	} else {
		h.employees[s.employee] = room[:last]
	}
	for _, r := range s.roles {
		if members := h.roles[r]; members != nil {
			delete(members, s)
			if len(members) == 0 {
				delete(h.roles, r)
			}
		}
	}
	h.streams--
}

// Deliver hands ev to every stream of employee and returns how many it
// reached. It never blocks.
func (h *Hub) Deliver(employee int64, ev *Event) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, s := range h.employees[employee] {
		if s.offer(ev) {
			n++
		}
	}
	return n
}

// DeliverFunc hands the event build returns to every stream of employee,
// calling build only when employee has a stream here, so a delivery to many
// employees encodes events only for those connected. It returns how many
// streams it reached and never blocks.
func (h *Hub) DeliverFunc(employee int64, build func() *Event) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	room := h.employees[employee]
	if len(room) == 0 {
		return 0
	}
	ev, n := build(), 0
	for _, s := range room {
		if s.offer(ev) {
			n++
		}
	}
	return n
}

// DeliverTo hands ev to every stream matching any of the targets, once per
// stream, and returns how many it reached. It never blocks.
func (h *Hub) DeliverTo(t Targets, ev *Event) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	if t.All {
		for _, room := range h.employees {
			for _, s := range room {
				if s.offer(ev) {
					n++
				}
			}
		}
		return n
	}
	if len(t.Roles) == 0 && len(t.Employees) == 1 {
		// One employee's streams: no stream can match twice.
		for _, s := range h.employees[t.Employees[0]] {
			if s.offer(ev) {
				n++
			}
		}
		return n
	}
	// A stream matched twice (its employee and a role) gets the event once.
	seen := make(streamSet)
	visit := func(s *stream) {
		if _, dup := seen[s]; dup {
			return
		}
		seen[s] = struct{}{}
		if s.offer(ev) {
			n++
		}
	}
	for _, id := range t.Employees {
		for _, s := range h.employees[id] {
			visit(s)
		}
	}
	for _, r := range t.Roles {
		for s := range h.roles[r] {
			visit(s)
		}
	}
	return n
}

// Connected returns those of employees that have an open stream here: one
// that has not ended (a removed employee's streams end before
// CloseEmployee returns, though they leave the rooms only once closed).
func (h *Hub) Connected(employees []int64) []int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]int64, 0, len(employees))
	for _, id := range employees {
		for _, s := range h.employees[id] {
			if s.open() {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// Resync makes every stream catch up from the store (deliveries may have
// been missed). A stream whose catch-up fails retries it with backoff until
// it succeeds.
func (h *Hub) Resync() {
	for _, s := range h.snapshot(nil) {
		s.requestCatchUp()
	}
}

// CloseEmployee ends every stream of employee (EndRemoved).
func (h *Hub) CloseEmployee(employee int64) {
	for _, s := range h.snapshot(&employee) {
		s.stop(EndRemoved)
	}
}

// snapshot returns the streams of one employee, or all when employee is nil.
func (h *Hub) snapshot(employee *int64) []*stream {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if employee != nil {
		return slices.Clone(h.employees[*employee])
	}
	out := make([]*stream, 0, h.streams)
	for _, room := range h.employees {
		out = append(out, room...)
	}
	return out
}

// Close ends every stream (EndShutdown), refuses new ones, and stops the
// engine. It is safe to call more than once. Streams end at once; use
// Shutdown to wait until their connections are closed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for _, s := range h.snapshot(nil) {
		s.stop(EndShutdown)
	}
	h.closeSIOSessions()
}

// Shutdown closes the hub (see Close), then waits until ctx ends for every
// stream's connection to be closed and the engine's goroutines to return.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.Close()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var err error
	for err == nil {
		n, _ := h.Stats()
		if n == 0 && h.running.Load() == 0 {
			break
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			err = fmt.Errorf("%d streams still closing: %w", n, ctx.Err())
		}
	}
	h.closeOnce.Do(func() {
		h.cancel()
		h.wheel.stop()
		if h.poller != nil {
			h.poller.stop()
		}
	})
	return err
}

// Stats reports the open streams and the employees holding them.
func (h *Hub) Stats() (streams, employees int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.streams, len(h.employees)
}

// Counters returns the engine's counters, for metrics.
func (h *Hub) Counters() *Counters { return &h.stats }

// Logger is what the engine logs through (a *slog.Logger satisfies it).
type Logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}

// goWork runs f on a goroutine that Shutdown waits for.
func (h *Hub) goWork(f func()) {
	h.running.Add(1)
	go func() {
		defer h.running.Add(-1)
		f()
	}()
}

// Counters are the engine's running totals: streams opened, open and ended
// by transport (and reason), events sent, client messages ignored.
type Counters struct {
	opened  [numTransports]atomic.Int64
	open    [numTransports]atomic.Int64
	sent    [numTransports]atomic.Int64
	ignored [numTransports]atomic.Int64
	ended   [numTransports][]atomic.Int64 // by End index

	truncated atomic.Int64
}

// Truncated returns how many replays had more than ReplayLimit to send.
func (c *Counters) Truncated() int64 { return c.truncated.Load() }

// Opened returns how many streams of t were opened.
func (c *Counters) Opened(t Transport) int64 { return c.opened[t].Load() }

// Open returns how many streams of t are open.
func (c *Counters) Open(t Transport) int64 { return c.open[t].Load() }

// Sent returns how many events were written to streams of t.
func (c *Counters) Sent(t Transport) int64 { return c.sent[t].Load() }

// Ignored returns how many client messages streams of t ignored.
func (c *Counters) Ignored(t Transport) int64 { return c.ignored[t].Load() }

// Ended returns how many streams of t ended for end.
func (c *Counters) Ended(t Transport, end *End) int64 { return c.ended[t][end.index()].Load() }

func (c *Counters) countEnd(t Transport, end *End) {
	c.ended[t][end.index()].Add(1)
}

func init() {
	for i, e := range Ends {
		e.idx = i + 1
	}
}

func (e *End) index() int { return e.idx - 1 }
