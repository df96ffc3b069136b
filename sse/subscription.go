package sse

import "sync"

// Subscription is one open stream's place in the hub: a bounded queue of
// events plus two ways to learn of changes. A transport with a goroutine
// waiting in a select uses the Ready and Done channels; one without (a
// parked stream) registers OnWake and checks Ended. It drains the queue with
// Take and calls Close when it stops.
//
// It is kept small, since there is one per open stream: the channels are
// made only when a transport asks for them.
type Subscription struct {
	hub      *Hub
	employee int64
	roles    []string

	mu     sync.Mutex // guards every field below
	queue  []*Event
	spare  []*Event // the previous batch's backing array, reused
	resync bool
	ended  bool
	err    error
	onEnd  func(error)   // called once when the hub ends the subscription
	notify func()        // called on every wake-up (OnWake)
	ready  chan struct{} // capacity 1: a pending wake-up; made by Ready
	done   chan struct{} // closed when ended; made by Done
}

// Employee returns the employee the stream belongs to.
func (s *Subscription) Employee() int64 { return s.employee }

// Ready is signalled when events or a resync request are waiting.
func (s *Subscription) Ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == nil {
		s.ready = make(chan struct{}, 1)
		if len(s.queue) > 0 || s.resync {
			s.ready <- struct{}{}
		}
	}
	return s.ready
}

// Done is closed when the hub ends the subscription (slow consumer, employee
// removed, hub closed) or the owner closes it.
func (s *Subscription) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.ended {
			close(s.done)
		}
	}
	return s.done
}

// Ended reports whether the subscription has ended (see Done).
func (s *Subscription) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Err returns why the subscription ended, or nil while it is open (and after
// the owner's own Close).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// OnWake registers f to run whenever the subscription becomes ready (events
// queued, a resync requested), besides the Ready signal. Transports that do
// not wait in a select (a parked stream blocked in a read) use it to get
// woken. If something is already waiting, f runs at once, so nothing queued
// before the registration is left unnoticed. f must not block; it runs on
// the publisher's goroutine.
func (s *Subscription) OnWake(f func()) {
	s.mu.Lock()
	s.notify = f
	pending := len(s.queue) > 0 || s.resync
	s.mu.Unlock()
	if pending {
		f()
	}
}

// OnEnd registers f to run, with the reason, when the hub ends the
// subscription (slow consumer, employee removed, hub closed), not on the
// owner's Close. Transports use it to abort a write that is stuck on a
// stalled client. f runs under the subscription's lock and must not block;
// if the subscription has already ended, f runs at once.
func (s *Subscription) OnEnd(f func(reason error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		if s.err != nil {
			f(s.err)
		}
		return
	}
	s.onEnd = f
}

// Take returns the queued events, oldest first, and whether a resync was
// requested, emptying the queue. The returned slice is valid until the next
// call to Take.
func (s *Subscription) Take() (events []*Event, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := s.queue
	clear(s.spare)
	s.queue = s.spare[:0]
	s.spare = batch
	resync, s.resync = s.resync, false
	return batch, resync
}

// Close unregisters the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.removeLocked(s)
	s.hub.mu.Unlock()
	s.end(nil)
}

// offer queues ev without blocking. A full queue ends the subscription with
// ErrSlowConsumer. It reports whether ev was queued.
func (s *Subscription) offer(ev *Event) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.hub.queueSize {
		s.endLocked(ErrSlowConsumer)
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, ev)
	ready, notify := s.ready, s.notify
	s.mu.Unlock()
	wake(ready, notify)
	return true
}

func (s *Subscription) requestResync() {
	s.mu.Lock()
	s.resync = true
	ready, notify := s.ready, s.notify
	s.mu.Unlock()
	wake(ready, notify)
}

func wake(ready chan struct{}, notify func()) {
	if ready != nil {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	if notify != nil {
		notify()
	}
}

// end ends the subscription with reason err (nil for the owner's own Close).
func (s *Subscription) end(err error) {
	s.mu.Lock()
	s.endLocked(err)
	s.mu.Unlock()
}

// endLocked ends the subscription once. s.mu must be held.
func (s *Subscription) endLocked(err error) {
	if s.ended {
		return
	}
	s.ended = true
	s.err = err
	s.queue = nil
	s.spare = nil
	if s.done != nil {
		close(s.done)
	}
	if err != nil && s.onEnd != nil {
		s.onEnd(err)
	}
	s.onEnd = nil
}
