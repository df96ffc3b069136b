package webpush

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/corp/herald/store"
)

// Defaults of WorkerConfig.
const (
	// DefaultInFlight bounds the pushes one instance has in flight.
	DefaultInFlight = 32
	// DefaultLease is how long a claimed push stays with the instance that
	// claimed it; if that instance dies, another takes the push after it.
	// Longer than SendTimeout, so a live instance's push is never taken.
	DefaultLease = 2 * time.Minute
	// DefaultRetryBase is the first retry's wait; each retry doubles it,
	// up to maxRetryWait.
	DefaultRetryBase = 5 * time.Second
	// TTL is how long a push is tried, and the TTL push services get.
	TTL = 24 * time.Hour
	// queueBatch is how many subscriptions one decision takes.
	queueBatch = 500
	// maxRetryWait bounds the wait between two attempts.
	maxRetryWait = time.Hour
	// settleBatch bounds the outcomes recorded in one store write.
	settleBatch = 256
	// shutdownGrace is how long pushes in flight may finish after the
	// worker is told to stop; then they are cut off and made due again.
	shutdownGrace = 3 * time.Second
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Store  store.Push
	Sender *Sender
	// Delay is PUSH_DELAY: a copy is decided this long after its delivery.
	Delay time.Duration
	// Interval is how often the worker decides and claims (default a
	// quarter of Delay, at most a second).
	Interval  time.Duration
	InFlight  int
	Lease     time.Duration
	RetryBase time.Duration
	Log       *slog.Logger
	Metrics   *Metrics
}

// Worker turns the store's push queue into requests to push services: it
// decides the due copies, claims due pushes (as many as it has free
// slots), and sends each on a goroutine of its own. Several instances run
// one each; the store hands every push to one of them.
type Worker struct {
	cfg  WorkerConfig
	wake chan struct{}
	// slots holds a token per push in flight (InFlight at most).
	slots chan struct{}
	wg    sync.WaitGroup
	// outcomes carries what became of each push to the settler, which
	// records them in batches (one store write for many pushes).
	outcomes chan store.PushOutcome
}

// NewWorker returns a worker; Run starts it.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Interval <= 0 {
		cfg.Interval = min(cfg.Delay/4, time.Second)
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1), slots: make(chan struct{}, cfg.InFlight),
		outcomes: make(chan store.PushOutcome, 4*cfg.InFlight)}
}

// Run works until ctx ends, then lets the pushes in flight finish for a
// moment; those cut off are made due again at once, for this instance's
// next start or another instance. Run is called once.
func (w *Worker) Run(ctx context.Context) {
	sendCtx, cancelSends := context.WithCancel(context.Background())
	defer cancelSends()
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		w.settleLoop()
	}()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.cycle(ctx, sendCtx)
		select {
		case <-ctx.Done():
			stop := time.AfterFunc(shutdownGrace, cancelSends)
			w.wg.Wait()
			stop.Stop()
			close(w.outcomes)
			<-settled
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// cycle decides what is due, then claims pushes for the free slots.
func (w *Worker) cycle(ctx, sendCtx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	for range 20 { // a bounded number of rounds; the next tick goes on
		n, more, err := w.cfg.Store.QueuePushes(qctx, store.PushRule{Now: now, Delay: w.cfg.Delay, TTL: TTL, Limit: queueBatch})
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Log.Warn("web push: cannot decide pushes; retrying", "err", err)
			}
			return
		}
		w.cfg.Metrics.queued.Add(float64(n))
		if !more {
			break
		}
	}
	free := w.cfg.InFlight - len(w.slots)
	if free <= 0 {
		return
	}
	jobs, err := w.cfg.Store.ClaimPushes(qctx, time.Now(), w.cfg.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Log.Warn("web push: cannot claim pushes; retrying", "err", err)
		}
		return
	}
	for _, j := range jobs {
		w.slots <- struct{}{}
		w.wg.Go(func() {
			defer func() {
				<-w.slots
				select {
				case w.wake <- struct{}{}: // a slot is free: claim more
				default:
				}
			}()
			w.push(sendCtx, j)
		})
	}
}

// push sends one job and settles it in the store by its outcome.
func (w *Worker) push(ctx context.Context, j store.PushJob) {
	log := w.cfg.Log.With("subscription", j.Subscription.ID, "employee", j.Subscription.Employee, "id", j.Seq)
	now := time.Now()
	if !now.Before(j.Expires) {
		w.outcomes <- store.PushOutcome{Job: j.ID}
		w.cfg.Metrics.failed.WithLabelValues("expired").Inc()
		return
	}
	res, err := w.cfg.Sender.Send(ctx, j.Subscription, Payload(j), j.Expires.Sub(now))
	if err != nil {
		log.Warn("web push: cannot send; dropped", "err", err)
	}
	switch {
	case ctx.Err() != nil:
		// Cut off at shutdown: due again at once, wherever it is claimed.
		w.outcomes <- store.PushOutcome{Job: j.ID, Retry: time.Now()}
		return
	case res.Outcome == Sent:
		w.cfg.Metrics.sent.Inc()
		w.outcomes <- store.PushOutcome{Job: j.ID}
		return
	}
	w.cfg.Metrics.failed.WithLabelValues(res.Reason).Inc()
	switch res.Outcome {
	case Gone:
		log.Info("web push: the push service says the subscription is gone; deleted", "status", res.Status)
		w.cfg.Metrics.removed.Inc()
		w.outcomes <- store.PushOutcome{Job: j.ID, DropSubscription: j.Subscription.ID}
	case Retry:
		wait := w.retryWait(j.Attempts, res.RetryAfter)
		at := time.Now().Add(wait)
		if !at.Before(j.Expires) {
			log.Warn("web push: giving up at the TTL", "attempts", j.Attempts, "reason", res.Reason)
			w.cfg.Metrics.failed.WithLabelValues("expired").Inc()
			w.outcomes <- store.PushOutcome{Job: j.ID}
			return
		}
		log.Debug("web push: retrying", "in", wait, "reason", res.Reason, "status", res.Status)
		w.outcomes <- store.PushOutcome{Job: j.ID, Retry: at}
	default:
		log.Warn("web push: the push service refused the push; dropped", "status", res.Status)
		w.outcomes <- store.PushOutcome{Job: j.ID}
	}
}

// retryWait is the wait before attempt+1: the push service's Retry-After
// when it gave one (at least a second), else RetryBase doubled per
// attempt, at most maxRetryWait.
func (w *Worker) retryWait(attempts int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(max(retryAfter, time.Second), TTL)
	}
	d := w.cfg.RetryBase << min(max(attempts-1, 0), 20)
	return min(d, maxRetryWait)
}

// settleLoop records outcomes until the channel closes, as many per store
// write as have arrived meanwhile. If a write fails, those pushes' leases
// run out and they are claimed again (a success may then be sent twice:
// the store was unreachable, nothing better is possible).
func (w *Worker) settleLoop() {
	batch := make([]store.PushOutcome, 0, settleBatch)
	for o := range w.outcomes {
		batch = append(batch[:0], o)
	gather:
		for len(batch) < settleBatch {
			select {
			case o, ok := <-w.outcomes:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.cfg.Store.SettlePushes(ctx, batch); err != nil {
			w.cfg.Log.Warn("web push: cannot record the outcome of pushes; they are tried again when their leases end", "pushes", len(batch), "err", err)
		}
		cancel()
	}
}

// payload is what a push carries, decrypted by the service worker.
type payload struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title"`
	Body      string `json:"body"`
	URL       string `json:"url,omitempty"`
	CreatedAt string `json:"created_at"`
}

// Payload is the JSON a push carries: the recipient's id, type, title,
// body, url when set, created_at. A body too long for one push message is
// cut (at a character boundary, with "…"): the notification is whole in
// the inbox. A url too long to fit even without the body (2,048
// characters of up to 4 bytes each can be 8 KiB) is left out, so the push
// still goes: a click then opens the site, as for a notification without
// url (herald-sw.js).
func Payload(j store.PushJob) []byte {
	n := j.Notification
	p := payload{
		ID: strconv.FormatInt(j.Seq, 10), Type: n.Type, Title: n.Title, Body: n.Body, URL: n.URL,
		CreatedAt: n.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
	b := marshal(p)
	if len(b) <= MaxPayload {
		return b
	}
	if p.URL != "" {
		bare := p
		bare.Body = ""
		if len(marshal(bare)) > MaxPayload {
			p.URL = ""
			if b = marshal(p); len(b) <= MaxPayload {
				return b
			}
		}
	}
	// The longest prefix of the body that fits, found by bisection (JSON
	// escaping makes the encoded size no simple function of the cut).
	body := n.Body
	lo, hi := 0, len(body)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		for mid > lo && !utf8.RuneStart(body[mid]) {
			mid--
		}
		p.Body = body[:mid] + "…"
		if mid > lo && len(marshal(p)) <= MaxPayload {
			lo = mid
		} else {
			hi = (lo+hi+1)/2 - 1
		}
	}
	p.Body = body[:lo] + "…"
	if lo == 0 {
		p.Body = ""
	}
	return marshal(p)
}

// marshal encodes p without escaping <, > and & (the payload is not HTML,
// and every byte counts against the 4 KiB of a push).
func marshal(p payload) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
