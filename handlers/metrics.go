package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corp/herald/sse"
)

// Metrics are Herald's Prometheus collectors, on a registry of their own
// (no global state). Counters on hot paths are single atomic adds.
type Metrics struct {
	reg             *prometheus.Registry
	published       *prometheus.CounterVec
	recipients      prometheus.Counter
	eventsSent      *prometheus.CounterVec
	streamsOpened   *prometheus.CounterVec
	streamsClosed   *prometheus.CounterVec
	replayTruncated prometheus.Counter
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec
}

// NewMetrics returns the collectors, with gauges reading hub's live counts
// and the Go runtime and process collectors.
func NewMetrics(hub *sse.Hub) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_notifications_published_total", Help: "Accepted publishes, by kind (persisted, ephemeral).",
		}, []string{"kind"}),
		recipients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_notification_recipients_total", Help: "Recipients of accepted publishes (stored copies, for persisted ones).",
		}),
		eventsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_stream_events_sent_total", Help: "Events written to streams of this instance, by transport.",
		}, []string{"transport"}),
		streamsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_streams_opened_total", Help: "Streams opened, by transport.",
		}, []string{"transport"}),
		streamsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_streams_closed_total", Help: "Streams ended, by transport and reason (client, slow_consumer, token_expired, removed, shutdown, error).",
		}, []string{"transport", "reason"}),
		replayTruncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_replay_truncated_total", Help: "Resumes that had more than the replay limit to send.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "HTTP requests, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_http_request_duration_seconds", Help: "HTTP request duration (streams: until they end), by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_rate_limited_total", Help: "Requests refused with 429 rate_limited, by limit (publish, connect, state).",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(m.published, m.recipients, m.eventsSent, m.streamsOpened, m.streamsClosed,
		m.replayTruncated, m.requests, m.duration, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_streams_open", Help: "Streams open on this instance."},
			func() float64 { n, _ := hub.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_stream_employees", Help: "Employees with at least one stream open on this instance."},
			func() float64 { _, n := hub.Stats(); return float64(n) }),
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for collectors added by the wiring.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// observe records one finished request under its route pattern and
// method. Every label value comes from a bounded set, whatever a client
// sends: the router's patterns (never the raw path: IDs would make the
// label set unbounded; "unmatched" for a path no route serves) and the
// methods of HTTP (anything else is "other": a client may send any token
// as a method, and each new one would be a new series, kept forever).
func (m *Metrics) observe(r *http.Request, status int, seconds float64) {
	route := "unmatched"
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		route = rc.RoutePattern()
	}
	method := methodLabel(r.Method)
	m.requests.WithLabelValues(route, method, statusLabel(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(seconds)
}

// methodLabel returns method if it is one of HTTP's, else "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// statusLabel returns the status as a label: one of the 500 codes HTTP
// allows (net/http writes nothing else).
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// streamClosed counts a stream's end by reason.
func (m *Metrics) streamClosed(transport string, err error) {
	reason := "error"
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		reason = "client"
	case errors.Is(err, errTokenExpired):
		reason = "token_expired"
	case errors.Is(err, sse.ErrSlowConsumer):
		reason = "slow_consumer"
	case errors.Is(err, sse.ErrRemoved):
		reason = "removed"
	case errors.Is(err, sse.ErrClosed):
		reason = "shutdown"
	}
	m.streamsClosed.WithLabelValues(transport, reason).Inc()
}
