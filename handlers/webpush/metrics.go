package webpush

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/corp/herald/store"
)

// Metrics are Web Push's Prometheus collectors.
type Metrics struct {
	queued  prometheus.Counter
	sent    prometheus.Counter
	failed  *prometheus.CounterVec
	removed prometheus.Counter
	depth   prometheus.GaugeFunc
}

// FailureReasons are the values of herald_push_failed_total's reason label.
var FailureReasons = []string{"gone", "throttled", "server_error", "network", "rejected", "expired"}

// NewMetrics returns the collectors; queue depth is read from st at each
// scrape (nil: no depth gauge).
func NewMetrics(st store.Push) *Metrics {
	m := &Metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_push_queued_total", Help: "Pushes decided and queued (one per notification and subscription), by this instance.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_push_sent_total", Help: "Pushes a push service accepted (2xx).",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_push_failed_total", Help: "Failed push attempts, by reason: gone (404/410), throttled (429), server_error (5xx), network (no answer), rejected (other 4xx), expired (given up at the TTL).",
		}, []string{"reason"}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_push_subscriptions_removed_total", Help: "Subscriptions deleted because their push service answered 404 or 410.",
		}),
	}
	for _, r := range FailureReasons {
		m.failed.WithLabelValues(r)
	}
	if st != nil {
		m.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_push_queue_depth", Help: "Pushes waiting or in flight, on every instance (read from the store at each scrape; -1 when it cannot be read).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := st.PushQueueDepth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	}
	return m
}

// Collectors returns the collectors, to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.queued, m.sent, m.failed, m.removed}
	if m.depth != nil {
		cs = append(cs, m.depth)
	}
	return cs
}
