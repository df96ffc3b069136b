// Package sse holds Herald's room registry (the hub) and the Server-Sent
// Events wire format.
//
// The hub keeps, per employee and per role, the open streams (subscriptions)
// of this instance. Publishing hands an *Event to each matching
// subscription's bounded queue and never waits: a stream whose queue is full
// is closed, and its client reconnects and replays from the store. Transports
// (SSE, WebSocket, later Socket.IO) are adapters that drain subscriptions.
package sse

import (
	"errors"
	"slices"
	"sync"
)

const (
	// DefaultQueueSize is how many events may wait for one stream. When a
	// stream's queue is full (its client reads too slowly), the hub closes
	// that stream: the client reconnects and replays what it missed from the
	// store. Publishing never blocks on a stream.
	DefaultQueueSize = 256
	// DefaultMaxStreams is how many streams one employee may hold open on one
	// instance (browser tabs).
	DefaultMaxStreams = 10
)

// Errors a subscription ends with, and Subscribe's refusals.
var (
	ErrTooManyStreams = errors.New("too many open streams for this employee")
	ErrClosed         = errors.New("hub closed")
	ErrSlowConsumer   = errors.New("stream queue full: client reads too slowly")
	ErrRemoved        = errors.New("employee removed from the directory")
)

// Option configures a Hub.
type Option func(*Hub)

// WithQueueSize sets the per-stream queue size (default DefaultQueueSize).
func WithQueueSize(n int) Option {
	return func(h *Hub) {
		if n > 0 {
			h.queueSize = n
		}
	}
}

// WithMaxStreams sets the per-employee stream limit (default DefaultMaxStreams).
func WithMaxStreams(n int) Option {
	return func(h *Hub) {
		if n > 0 {
			h.maxStreams = n
		}
	}
}

// Targets selects subscriptions for PublishTo.
type Targets struct {
	Employees []int64
	Roles     []string
	All       bool
}

type set = map[*Subscription]struct{}

// Hub is the registry of open streams. Its methods are safe for concurrent
// use; it starts no goroutines.
//
// Memory matters here (one entry per open stream): an employee's room is a
// small slice (at most maxStreams tabs), and there is no separate set of all
// streams: "all" walks the rooms.
type Hub struct {
	queueSize  int
	maxStreams int

	mu        sync.RWMutex // guards employees, roles, streams and closed
	employees map[int64][]*Subscription
	roles     map[string]set
	streams   int
	closed    bool
}

// NewHub returns an empty hub.
func NewHub(opts ...Option) *Hub {
	h := &Hub{
		queueSize:  DefaultQueueSize,
		maxStreams: DefaultMaxStreams,
		employees:  make(map[int64][]*Subscription),
		roles:      make(map[string]set),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Subscribe registers a stream of employee with the given roles. It fails
// with ErrTooManyStreams at the per-employee limit and ErrClosed after Close.
// The caller owns the subscription and must Close it.
func (h *Hub) Subscribe(employee int64, roles []string) (*Subscription, error) {
	s := &Subscription{hub: h, employee: employee, roles: roles}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	room := h.employees[employee]
	if len(room) >= h.maxStreams {
		return nil, ErrTooManyStreams
	}
	h.employees[employee] = append(room, s)
	for _, r := range roles {
		if h.roles[r] == nil {
			h.roles[r] = make(set)
		}
		h.roles[r][s] = struct{}{}
	}
	h.streams++
	return s, nil
}

// removeLocked unregisters s, once. h.mu must be held for writing.
func (h *Hub) removeLocked(s *Subscription) {
	room := h.employees[s.employee]
	i := slices.Index(room, s)
	if i < 0 {
		return // removed before
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

// Publish queues ev on every stream of employee and returns how many it
// reached. It never blocks.
func (h *Hub) Publish(employee int64, ev *Event) int {
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

// PublishTo queues ev on every stream matching any of the targets, once per
// stream, and returns how many it reached. It never blocks.
func (h *Hub) PublishTo(t Targets, ev *Event) int {
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
	// A stream matched twice (its employee and a role) gets the event once.
	seen := make(set)
	visit := func(s *Subscription) {
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

// PublishFunc queues the event build returns on every stream of employee,
// calling build only when employee has a stream here, so a delivery to
// many employees encodes events only for those connected. It returns how
// many streams it reached and never blocks.
func (h *Hub) PublishFunc(employee int64, build func() *Event) int {
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

// Connected returns those of employees that have an open stream here.
func (h *Hub) Connected(employees []int64) []int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]int64, 0, len(employees))
	for _, id := range employees {
		if len(h.employees[id]) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Resync asks every stream to catch up from the store (deliveries may have
// been missed).
func (h *Hub) Resync() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, room := range h.employees {
		for _, s := range room {
			s.requestResync()
		}
	}
}

// CloseEmployee ends every stream of employee with ErrRemoved.
func (h *Hub) CloseEmployee(employee int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.employees[employee] {
		s.end(ErrRemoved)
	}
}

// Close ends every stream with ErrClosed and refuses new ones. It is safe to
// call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	subs := make([]*Subscription, 0, h.streams)
	for _, room := range h.employees {
		subs = append(subs, room...)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.end(ErrClosed)
	}
}

// Stats reports the open streams and the employees holding them.
func (h *Hub) Stats() (streams, employees int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.streams, len(h.employees)
}
