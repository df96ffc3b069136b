package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

const (
	// maxBatch bounds how many pending notifications one pass of the
	// listener reads from the database for (one query per kind).
	maxBatch = 1000
	// fetchTimeout bounds one batch's reads; a batch that cannot be read is
	// made up for by a resync once the database answers again.
	fetchTimeout = 5 * time.Second
	// resyncRetry is how often the listener checks whether the database is
	// back when it owes the streams a resync.
	resyncRetry = time.Second
	// The listener reconnects after minReconnect, doubling up to
	// maxReconnect while the database stays away. maxReconnect also bounds
	// how long stopping the listener may take.
	minReconnect = 200 * time.Millisecond
	maxReconnect = 2 * time.Second
)

// listenerState is what Ping reports about the listener: up once LISTEN is
// in place and while its connection lasts.
type listenerState struct {
	mu         sync.Mutex // guards connected and subscribed
	connected  bool
	subscribed bool
}

func (s *listenerState) set(connected, subscribed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected, s.subscribed = connected, subscribed
}

func (s *listenerState) setConnected(c bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = c
}

func (s *listenerState) setSubscribed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscribed = true
}

func (s *listenerState) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected && s.subscribed
}

// Listen LISTENs on Herald's channel and hands what every instance commits
// to sink, in commit order, until ctx ends. It reads, in batches, only what
// sink's local streams need (sink.Connected). When its connection drops it
// reconnects by itself and calls sink.Resync, so streams catch up from the
// store: persisted notifications are never lost, ephemeral messages sent
// during the gap are. Only one Listen runs per DB.
func (db *DB) Listen(ctx context.Context, sink store.Sink) error {
	if !db.listening.CompareAndSwap(false, true) {
		return errors.New("postgres: a listener is already running")
	}
	defer db.listening.Store(false)
	db.listener.set(false, false)

	w := &listenWork{db: db, sink: sink, dialer: newListenerDialer(), pingDone: make(chan error, 1)}
	w.l = pq.NewDialListener(w.dialer, db.dsn, minReconnect, maxReconnect, w.event)
	defer w.stop()
	// Whatever ends Listen ends the housekeeping too (before stop waits).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// LISTEN waits for a connection; closing the listener when ctx ends
	// releases it.
	release := context.AfterFunc(ctx, w.closeListener)
	defer release()
	if err := w.l.Listen(channel); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: listen: %w", err)
	}
	db.listener.setSubscribed()
	db.log.Info("listening for notifications", "channel", channel)
	// Streams opened before LISTEN was in place may have missed something.
	sink.Resync()

	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		db.housekeep(ctx)
	}()
	return w.run(ctx)
}

// event tracks the listener's connection (called by pq.Listener's
// goroutine; it must not block).
func (w *listenWork) event(ev pq.ListenerEventType, err error) {
	log := w.db.log
	switch ev {
	case pq.ListenerEventConnected:
		w.db.listener.setConnected(true)
	case pq.ListenerEventReconnected:
		w.db.listener.setConnected(true)
		log.Info("listener reconnected; streams catch up from the store")
	case pq.ListenerEventDisconnected:
		w.db.listener.setConnected(false)
		if !w.closing.Load() {
			log.Warn("listener disconnected; reconnecting", "err", err)
		}
	case pq.ListenerEventConnectionAttemptFailed:
		w.db.listener.setConnected(false)
		log.Debug("listener reconnect failed", "err", err)
	}
}

// listenWork is one Listen's state. pinging and owed belong to the loop's
// goroutine.
type listenWork struct {
	db       *DB
	sink     store.Sink
	l        *pq.Listener
	dialer   *dialer
	pingDone chan error     // capacity 1: the in-flight ping's answer
	wg       sync.WaitGroup // the ping and housekeeping goroutines

	closeOnce sync.Once
	closing   atomic.Bool // set when Listen ends: disconnects are expected
	pinging   bool
	owed      bool // a resync is due once the database answers
}

// run is the listener's loop: one select over the context, the
// notifications, the ping schedule and, while owed, the resync retry.
func (w *listenWork) run(ctx context.Context) error {
	ping := time.NewTicker(w.db.opts.pingInterval)
	defer ping.Stop()
	var (
		pingDeadline <-chan time.Time
		retry        *time.Ticker
		retryC       <-chan time.Time
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	batch := make([]*pq.Notification, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-w.l.Notify:
			if !ok {
				if ctx.Err() != nil {
					return nil // closed because ctx ended
				}
				return errors.New("postgres: listener closed")
			}
			batch = drain(w.l.Notify, append(batch[:0], n))
			w.handle(ctx, batch)
		case <-ping.C:
			if pingDeadline == nil && !w.pinging {
				pingDeadline = w.startPing()
			}
		case err := <-w.pingDone:
			w.pinging, pingDeadline = false, nil
			if err != nil {
				w.db.log.Debug("listener ping failed", "err", err)
			}
		case <-pingDeadline:
			// A connection that does not answer within the timeout is
			// half-open: close it, and pq.Listener reconnects (and signals
			// a resync).
			pingDeadline = nil
			w.db.log.Warn("listener ping timed out; reconnecting", "timeout", w.db.opts.pingTimeout)
			w.dialer.closeCurrent()
		case <-retryC:
			if w.tryResync(ctx) {
				retry.Stop()
				retry, retryC = nil, nil
			}
		}
		if w.owed && retry == nil {
			retry = time.NewTicker(resyncRetry)
			retryC = retry.C
		}
	}
}

// startPing pings the listener's connection in the background (the loop
// must keep draining notifications meanwhile: pq reads the ping's answer
// behind them) and returns when the answer is due.
func (w *listenWork) startPing() <-chan time.Time {
	w.pinging = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.pingDone <- w.l.Ping()
	}()
	return time.After(w.db.opts.pingTimeout)
}

// drain appends the notifications already waiting, up to maxBatch.
func drain(ch <-chan *pq.Notification, batch []*pq.Notification) []*pq.Notification {
	for len(batch) < maxBatch {
		select {
		case n, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, n)
		default:
			return batch
		}
	}
	return batch
}

// tryResync makes streams catch up once the database answers again, after
// a batch could not be read. It reports whether the resync happened.
func (w *listenWork) tryResync(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	var one int
	if err := w.db.x.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return false
	}
	w.owed = false
	w.sink.Resync()
	return true
}

// closeListener closes the listener's connection first (a ping stuck on a
// half-open connection holds the listener's lock) and ends a reconnect in
// progress, then closes the listener.
func (w *listenWork) closeListener() {
	w.closeOnce.Do(func() {
		w.closing.Store(true)
		w.dialer.shutdown()
		w.l.Close()
	})
}

// stop closes the listener and waits for what Listen started: pq.Listener's
// goroutine (it closes Notify when done; draining it lets it finish), the
// ping and the housekeeping.
func (w *listenWork) stop() {
	w.closeListener()
	for range w.l.Notify {
	}
	w.wg.Wait()
	w.db.listener.set(false, false)
}
