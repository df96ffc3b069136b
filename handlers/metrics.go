package handlers

import (
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
	reg         *prometheus.Registry
	published   *prometheus.CounterVec
	recipients  prometheus.Counter
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec

	// The notification center's.
	stateChanges *prometheus.CounterVec
	withdrawn    prometheus.Counter
	scheduled    prometheus.Counter
	swept        prometheus.Counter
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
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_inbox_state_changes_total", Help: "Inbox items changed by employees, by operation (read, unread, seen, archive, unarchive, delete).",
		}, []string{"op"}),
		withdrawn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_notifications_withdrawn_total", Help: "Notifications withdrawn by their publishers.",
		}),
		scheduled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_scheduled_delivered_total", Help: "Scheduled notifications delivered by this instance at their time.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_retention_deleted_rows_total", Help: "Rows deleted by this instance's retention sweep (old and expired notifications and copies, old idempotency keys).",
		}),
	}
	m.reg.MustRegister(m.stateChanges, m.withdrawn, m.scheduled, m.swept)
	m.reg.MustRegister(m.published, m.recipients, m.requests, m.duration, m.rateLimited, streamCollector{hub},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_streams_open", Help: "Streams open on this instance."},
			func() float64 { n, _ := hub.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_stream_employees", Help: "Employees with at least one stream open on this instance."},
			func() float64 { _, n := hub.Stats(); return float64(n) }),
	)
	return m
}

// Delivered counts scheduled notifications delivered here.
func (m *Metrics) Delivered(n int) { m.scheduled.Add(float64(n)) }

// Swept counts rows the retention sweep deleted here.
func (m *Metrics) Swept(n int) { m.swept.Add(float64(n)) }

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

// Stream metrics are read from the engine's own counters when scraped, so
// nothing on a stream's path touches Prometheus; the ends are labelled from
// sse.Ends, the one table of reasons, so the two cannot drift.
var (
	descOpened = prometheus.NewDesc("herald_streams_opened_total", "Streams opened, by transport.", []string{"transport"}, nil)
	descOpen   = prometheus.NewDesc("herald_streams_open_by_transport", "Streams open on this instance, by transport (herald_streams_open is their sum).", []string{"transport"}, nil)
	descClosed = prometheus.NewDesc("herald_streams_closed_total", "Streams ended, by transport and reason (the reasons of `event: closed`).", []string{"transport", "reason"}, nil)
	descSent   = prometheus.NewDesc("herald_stream_events_sent_total", "Events written to streams of this instance, by transport.", []string{"transport"}, nil)
	descIgnore = prometheus.NewDesc("herald_stream_client_messages_ignored_total", "Messages clients sent on push-only streams (ignored), by transport.", []string{"transport"}, nil)
	descTrunc  = prometheus.NewDesc("herald_replay_truncated_total", "Resumes that had more than the replay limit to send.", nil, nil)
)

type streamCollector struct{ hub *sse.Hub }

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpened, descOpen, descClosed, descSent, descIgnore, descTrunc} {
		ch <- d
	}
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.hub.Counters()
	for _, t := range sse.Transports {
		name := t.String()
		ch <- prometheus.MustNewConstMetric(descOpened, prometheus.CounterValue, float64(n.Opened(t)), name)
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n.Open(t)), name)
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(n.Sent(t)), name)
		ch <- prometheus.MustNewConstMetric(descIgnore, prometheus.CounterValue, float64(n.Ignored(t)), name)
		for _, end := range sse.Ends {
			ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(n.Ended(t, end)), name, end.Reason)
		}
	}
	ch <- prometheus.MustNewConstMetric(descTrunc, prometheus.CounterValue, float64(n.Truncated()))
}
