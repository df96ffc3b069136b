// Package handlers is Herald's HTTP surface: the chi router, every route,
// JSON and problem+json responses, and the stream transports, which are thin
// adapters over the sse hub.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

// Config holds what the handlers need.
type Config struct {
	Store  store.Store
	Hub    *sse.Hub
	Auth   *auth.Authenticator
	Logger *slog.Logger
	// Origins are the browser origins allowed by CORS (FRONTEND_URL).
	Origins []string
	// MaxStreams is the hub's per-employee limit, for error messages.
	MaxStreams int
	// Ready, if set, adds readiness checks to the store's (listener, keys).
	Ready func(ctx context.Context) error
	// OpenAPI is the API document (YAML) served at /openapi.yaml and, as
	// JSON, at /openapi.json; nil serves the embedded openapi.YAML.
	OpenAPI []byte
	// Demo, if set, serves the demo page at / (--dev).
	Demo *Demo
	// Metrics are the Prometheus collectors (a fresh set when nil).
	Metrics *Metrics
	// InsecureCookie leaves the Secure attribute off session cookies, for
	// plain http on localhost (--dev).
	InsecureCookie bool
	// Limits are the rate limits (all off when zero).
	Limits Limits
	// Push turns Web Push on; nil leaves it off (its routes answer 404).
	Push *PushConfig
}

// Handler serves Herald's HTTP API.
type Handler struct {
	store      store.Store
	hub        *sse.Hub
	auth       *auth.Authenticator
	log        *slog.Logger
	maxStreams int
	ready      func(ctx context.Context) error
	docs       *docsAssets
	web        webModules
	demo       *Demo
	origins    []string
	metrics    *Metrics
	limits     limiters
	push       *PushConfig
	draining   atomic.Bool
	readiness  readiness
	router     chi.Router

	// insecureCookie: session cookies without Secure (--dev).
	insecureCookie bool
}

// New returns the HTTP handler with every route.
func New(cfg Config) *Handler {
	h := &Handler{
		store:      cfg.Store,
		hub:        cfg.Hub,
		auth:       cfg.Auth,
		log:        orDiscard(cfg.Logger),
		maxStreams: cfg.MaxStreams,
		ready:      cfg.Ready,
		docs:       newDocsAssets(cfg.OpenAPI),
		web:        newWebModules(),
		demo:       cfg.Demo,
		origins:    cfg.Origins,
		metrics:    cfg.Metrics,
		limits:     newLimiters(cfg.Limits),
		push:       cfg.Push,

		insecureCookie: cfg.InsecureCookie,
	}
	if h.metrics == nil {
		h.metrics = NewMetrics(cfg.Hub)
	}
	if h.maxStreams <= 0 {
		h.maxStreams = sse.DefaultMaxStreams
	}
	h.router = h.routes(cfg.Origins)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

// Routes returns the router, for tests that walk it.
func (h *Handler) Routes() chi.Routes { return h.router }

// Drain marks the instance as shutting down: /readyz answers 503 from now on.
func (h *Handler) Drain() { h.draining.Store(true) }

// Shutdown closes the hub, which ends every stream (clients reconnect
// elsewhere and replay), and waits until ctx ends for their connections to
// close.
func (h *Handler) Shutdown(ctx context.Context) error { return h.hub.Shutdown(ctx) }

// routes is the one place that lists every route.
func (h *Handler) routes(origins []string) chi.Router {
	r := chi.NewRouter()
	r.Use(h.recoverer, h.accessLog)
	r.Use(cors.Handler(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"},
		ExposedHeaders:   []string{"Idempotent-Replayed", "Retry-After", "WWW-Authenticate"},
		AllowCredentials: true,
		MaxAge:           600,
	}))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, notFound("no route "+r.Method+" "+r.URL.Path))
	})
	r.MethodNotAllowed(h.methodNotAllowed)

	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Method(http.MethodGet, "/metrics", h.metrics.Handler())
	r.Get("/openapi.yaml", h.openAPIYAML)
	r.Get("/openapi.json", h.openAPIJSON)
	r.Get("/docs", h.docsPage)
	r.Get("/docs/redoc.standalone.js", h.docsRenderer)
	// The browser client: herald.js and the <herald-inbox> module it imports.
	r.Get("/herald.js", h.webClient)
	r.Get("/herald-inbox.js", h.webClient)
	r.Get("/herald-sw.js", h.webClient)
	if h.demo != nil {
		r.Get("/", h.demoPage)
	}

	authn := h.auth.Middleware(h.writeError)
	// Streams: no timeouts, no compression, no body deadline. Every stream
	// transport's route takes limitConnects first (CONNECT_RATE counts
	// stream opens per client IP over all of them).
	r.With(h.limitConnects, authn).Get("/events", h.events)
	r.With(h.limitConnects, authn).Get("/ws", h.ws)
	// Socket.IO authenticates each CONNECT itself (the token may come in
	// the CONNECT packet), and only a handshake opens a stream.
	r.With(h.limitSIOConnects).Get("/socket.io/", h.socketIO)
	r.With(h.limitSIOConnects).Post("/socket.io/", h.socketIO)
	// The REST API. Routes that change inbox state or preferences take
	// limitState (STATE_RATE per employee).
	r.Group(func(r chi.Router) {
		r.Use(bodyDeadline(30*time.Second), authn)
		r.With(h.limitPublishes).Post("/notifications", h.api(h.publish))
		r.Get("/notifications", h.api(h.inbox))
		r.With(h.limitState).Post("/notifications/read", h.api(h.markRead))
		r.Put("/employees/{id}", h.api(h.putEmployee))
		r.Delete("/employees/{id}", h.api(h.deleteEmployee))
		r.Post("/session", h.api(h.createSession))
	})
	// Web Push: the key for anyone, subscriptions for employees; 404 while
	// push is off.
	r.With(h.pushOn).Get("/push/key", h.pushKey)
	r.Group(func(r chi.Router) {
		r.Use(bodyDeadline(30*time.Second), h.pushOn, authn, h.limitState)
		r.Post("/push/subscriptions", h.api(h.subscribePush))
		r.Delete("/push/subscriptions", h.api(h.unsubscribePush))
	})
	// Signing out needs no token (see deleteSession).
	r.Delete("/session", h.deleteSession)
	return r
}

// apiHandler is a REST handler that returns its failure instead of writing
// it; api writes it as a problem, so error mapping stays in writeError.
type apiHandler func(w http.ResponseWriter, r *http.Request) error

func (h *Handler) api(fn apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// methodNotAllowed answers 405 with the Allow header chi's default would set.
func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if h.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	h.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, code: CodeNotFound,
		detail: r.Method + " is not served at " + r.URL.Path + "; allowed: " + strings.Join(allowed, ", ")})
}

// bodyDeadline bounds how long a client may take to send its request body,
// per request (a server-wide ReadTimeout would also cut streams).
func bodyDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
			next.ServeHTTP(w, r)
		})
	}
}

// employeeOnly returns the caller if it is an employee; services get 403.
func employeeOnly(r *http.Request) (auth.Identity, error) {
	id, _ := auth.FromContext(r.Context())
	if id.Kind != auth.KindEmployee {
		return id, auth.Forbidden("this route is for employees; a service token opens no streams and has no inbox")
	}
	return id, nil
}

// directoryOnly returns the caller if it holds a directory role.
// Publishing alone does not allow it: a publisher that could give an
// employee's login to itself could read that inbox.
func directoryOnly(r *http.Request) (auth.Identity, error) {
	id, _ := auth.FromContext(r.Context())
	if !id.Directory {
		return id, auth.Forbidden("a directory role is required (DIRECTORY_ROLES); publishing alone does not allow changing the directory")
	}
	return id, nil
}

// publisherOnly returns the caller if it holds a publisher role.
func publisherOnly(r *http.Request) (auth.Identity, error) {
	id, _ := auth.FromContext(r.Context())
	if !id.Publisher {
		return id, auth.Forbidden("a publisher role is required (PUBLISHER_ROLES)")
	}
	return id, nil
}
