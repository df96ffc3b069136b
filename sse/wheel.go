package sse

import (
	"sync"
	"time"
)

// wheelSlots is the number of slots of the timer wheel, a power of two.
// A timer further away than one turn waits in its slot for later turns.
const wheelSlots = 512

// wheel is a hashed timer wheel holding one timer per stream (its next
// heartbeat, expiry, maximum age or store retry): scheduling and
// cancelling are O(1) on intrusive links in the stream, and one goroutine
// ticks for every stream of the instance, so an idle stream costs no timer
// and no goroutine of its own.
type wheel struct {
	tick int64 // resolution, nanoseconds

	mu    sync.Mutex // guards slots, last and the streams' w* fields
	slots [wheelSlots]*stream
	last  int64 // the last tick number processed

	done    chan struct{}
	stopped chan struct{}
}

func startWheel(tick time.Duration) *wheel {
	w := &wheel{tick: int64(tick), done: make(chan struct{}), stopped: make(chan struct{})}
	w.last = nanotime() / w.tick
	go w.run()
	return w
}

// schedule sets s's timer to due (Unix nanoseconds), replacing any earlier one.
func (w *wheel) schedule(s *stream, due int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unlinkLocked(s)
	// The tick at or after due (so a slot's timers have all passed when
	// its tick is processed), and never one already processed.
	n := max((due+w.tick-1)/w.tick, w.last+1)
	slot := int32(n & (wheelSlots - 1))
	s.wdue, s.wslot = due, slot
	s.wprev, s.wnext = nil, w.slots[slot]
	if s.wnext != nil {
		s.wnext.wprev = s
	}
	w.slots[slot] = s
}

// cancel removes s's timer, if any.
func (w *wheel) cancel(s *stream) {
	w.mu.Lock()
	w.unlinkLocked(s)
	w.mu.Unlock()
}

func (w *wheel) unlinkLocked(s *stream) {
	if s.wslot < 0 {
		return
	}
	if s.wprev != nil {
		s.wprev.wnext = s.wnext
	} else {
		w.slots[s.wslot] = s.wnext
	}
	if s.wnext != nil {
		s.wnext.wprev = s.wprev
	}
	s.wnext, s.wprev, s.wslot = nil, nil, -1
}

// run ticks until stop, firing the timers that passed.
func (w *wheel) run() {
	defer close(w.stopped)
	t := time.NewTicker(time.Duration(w.tick))
	defer t.Stop()
	var fired []*stream
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		now := nanotime() // the streams' timers are wall-clock Unix nanoseconds
		fired = w.expire(now, fired[:0])
		for i, s := range fired {
			s.onTimer(now)
			fired[i] = nil
		}
	}
}

// expire unlinks and returns the streams whose timers passed by now, from
// every slot between the last tick processed and now.
func (w *wheel) expire(now int64, fired []*stream) []*stream {
	w.mu.Lock()
	defer w.mu.Unlock()
	to := now / w.tick
	if to-w.last > wheelSlots {
		w.last = to - wheelSlots // a full turn visits every slot
	}
	for n := w.last + 1; n <= to; n++ {
		for s := w.slots[n&(wheelSlots-1)]; s != nil; {
			next := s.wnext
			if s.wdue <= now {
				w.unlinkLocked(s)
				fired = append(fired, s)
			}
			s = next
		}
	}
	w.last = to
	return fired
}

func (w *wheel) stop() {
	close(w.done)
	<-w.stopped
}
