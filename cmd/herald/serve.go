package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/handlers/webpush"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
)

// shutdownTimeout bounds a graceful stop (SIGTERM): in-flight publishes
// finish, streams are closed so clients reconnect elsewhere.
const shutdownTimeout = 10 * time.Second

// maxHTTP2Streams is how many streams one HTTP/2 connection may carry at
// once. A browser needs a few; a proxy speaking h2c to Herald carries many
// browsers' streams on each connection (it opens another beyond this).
const maxHTTP2Streams = 1000

func serveCommand() *command {
	return &command{
		name: "serve", summary: "run the service (the default command)",
		usage: "herald [serve] [flags]",
		about: `Runs Herald. Each setting comes from its environment variable or its flag (a
flag wins over the environment); the list below gives both, with defaults.
Herald refuses to start, naming what to set, when neither JWT_SECRET nor
Azure AD is configured, unless --dev is given.`,
		example: `go run ./cmd/herald serve --dev      # what make run does: demo employees, demo page, printed commands
JWT_SECRET="$(openssl rand -base64 32)" DATABASE_URL=sqlite:/var/lib/herald/herald.db herald serve
herald serve --http-addr :8443 --tls-cert-file cert.pem --tls-key-file key.pem --jwt-secret "$JWT_SECRET"`,
		run: serveCmd,
	}
}

func serveCmd(ctx context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	cfg, err := loadConfig(fs, args, e.getenv, func(fs *flag.FlagSet, args []string) error { return c.parse(e, fs, args) })
	if err != nil {
		return err
	}
	return serve(ctx, cfg, e.stdout, e.stderr)
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs Herald until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	// Bind first: a busy address stops the start before anything is
	// created or migrated.
	ln, err := listen(cfg.HTTPAddr, "HTTP_ADDR")
	if err != nil {
		return err
	}
	defer ln.Close()
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		if tlsConfig, err = newTLSConfig(cfg.TLSCertFile, cfg.TLSKeyFile, log); err != nil {
			return err
		}
	}
	if cfg.DebugAddr != "" {
		dln, err := listen(cfg.DebugAddr, "DEBUG_ADDR")
		if err != nil {
			return err
		}
		defer serveDebug(dln, log)()
	}
	if cfg.Dev {
		if err := prepareDev(&cfg, ln.Addr(), log); err != nil {
			return err
		}
	}
	if cfg.JWTSecret != "" && len(cfg.JWTSecret) < auth.MinSecretBytes {
		log.Warn("JWT_SECRET is shorter than 32 bytes; HS256 wants at least 256 bits")
	}
	// PostgreSQL unreachable at start: serve (503, /readyz not ready) and
	// keep trying, rather than exit.
	st, err := openStore(ctx, cfg.DatabaseURL, log, true, postgres.WithRetryStart())
	if err != nil {
		return err
	}
	defer st.Close()

	app, err := wire(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer app.close()
	defer app.background(st, log)() // stopped after the HTTP server

	// Accept requests once the listener is up, so the first publishes reach
	// the first streams; a store that is down at start does not block it
	// (readyz says so, and streams catch up).
	waitReady(ctx, st, 10*time.Second, log)

	srv := newServer(cfg, app.handler, tlsConfig, log)
	log.Info("listening", "addr", ln.Addr().String(), "store", storeKind(cfg.DatabaseURL), "protocols", srv.Protocols.String(), "version", buildVersion())
	if cfg.Dev {
		printDevBanner(stdout, cfg, ln.Addr(), tlsConfig != nil, app.demo)
	}
	return serveUntil(ctx, srv, ln, app, log)
}

// serveUntil serves on ln until ctx ends, then shuts down gracefully.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, app *app, log *slog.Logger) error {
	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdown(srv, app, log)
	return nil
}

// listen binds addr; its errors name the variable that set it and what to do.
func listen(addr, variable string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	flagName := "--" + strings.ToLower(strings.ReplaceAll(variable, "_", "-"))
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		host, port, _ := net.SplitHostPort(addr)
		next, _ := strconv.Atoi(port)
		hint = fmt.Sprintf(": another process listens there; stop it, or set %s (or %s) to a free address, e.g. %s=%s",
			variable, flagName, variable, net.JoinHostPort(host, strconv.Itoa(next+1)))
	case errors.Is(err, syscall.EACCES):
		hint = fmt.Sprintf(": ports below 1024 need privileges; set %s to a higher port, e.g. :3000", variable)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = fmt.Sprintf(": this machine has no such address; set %s to one of its addresses, or :PORT for all", variable)
	}
	return nil, fmt.Errorf("%s=%s: cannot listen: %w%s", variable, addr, err, hint)
}

// newServer returns the HTTP server: HTTP/1.1 always, HTTP/2 over TLS, and
// cleartext HTTP/2 (h2c) when H2C is on.
func newServer(cfg config, h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	switch {
	case tlsConfig != nil:
		p.SetHTTP2(true)
	case cfg.H2C:
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		TLSConfig:         tlsConfig,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxHTTP2Streams},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No ReadTimeout/WriteTimeout: they would cut streams. Streams set a
		// deadline per write; REST bodies get a per-request read deadline.
	}
}

// shutdown stops srv and app gracefully (SIGTERM): not ready, no new
// connections, streams closed, in-flight requests finished.
func shutdown(srv *http.Server, app *app, log *slog.Logger) {
	log.Info("shutting down")
	app.handler.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Shutdown stops accepting and waits for in-flight requests; streams
	// never finish by themselves, so the hub ends them (clients reconnect
	// elsewhere and replay).
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	app.hub.Close()
	if err := <-shut; err != nil {
		log.Warn("shutdown incomplete", "err", err)
		srv.Close()
	}
	if err := app.handler.Shutdown(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	log.Info("stopped")
}

// app is what serve wires between the store and the HTTP server.
type app struct {
	hub     *sse.Hub
	authn   *auth.Authenticator
	handler *handlers.Handler
	demo    *handlers.Demo
	close   func()
	// marks and pusher run while Web Push is on (nil otherwise).
	marks  *webpush.Marks
	pusher *webpush.Worker
	// retention is RETENTION, for the center's background jobs.
	retention time.Duration
}

// wire builds the hub, the authenticator and the handlers on st.
func wire(ctx context.Context, cfg config, st store.Store, log *slog.Logger) (*app, error) {
	a := &app{close: func() {}, retention: cfg.Retention}
	hubOpts := []sse.Option{sse.WithHeartbeat(cfg.Heartbeat), sse.WithGoroutines(cfg.GoroutineStreams),
		sse.WithMaxInstanceStreams(cfg.MaxStreams), sse.WithMaxAge(cfg.MaxStreamAge),
		sse.WithSource(handlers.Source{Store: st}), sse.WithLogger(log.With("component", "streams"))}
	if cfg.VAPIDKey != nil {
		// What streams write is marked in the store a few times per
		// PUSH_DELAY, so every instance's decision sees it in time.
		a.marks = webpush.NewMarks(st, pushInterval(cfg.PushDelay), log.With("component", "push"))
		hubOpts = append(hubOpts, sse.WithWritten(a.marks.Written))
	}
	a.hub = sse.NewHub(hubOpts...)
	metrics := handlers.NewMetrics(a.hub)
	if cfg.VAPIDKey != nil {
		pm := webpush.NewMetrics(st)
		metrics.Registry().MustRegister(pm.Collectors()...)
		a.pusher = webpush.NewWorker(webpush.WorkerConfig{
			Store:  st,
			Sender: &webpush.Sender{Client: webpush.NewHTTPClient(), Key: cfg.VAPIDKey, Subject: cfg.VAPIDSubject},
			Delay:  cfg.PushDelay, Interval: pushInterval(cfg.PushDelay),
			Log: log.With("component", "push"), Metrics: pm,
		})
	}
	if cfg.Dev {
		var err error
		if a.demo, err = seedDemo(ctx, st, []byte(cfg.JWTSecret)); err != nil {
			return nil, err
		}
	}
	azure, err := startAzure(cfg, log)
	if err != nil {
		return nil, err
	}
	var external auth.TokenVerifier
	var ready func(context.Context) error
	if azure != nil {
		a.close = azure.Close // stops the key loader and background refresh
		external, ready = azure, azure.Ready
	}
	a.authn, err = auth.New(auth.Config{
		Secret:         []byte(cfg.JWTSecret),
		External:       external,
		Cookie:         cfg.TokenCookie,
		PublisherRoles: cfg.PublisherRoles,
		DirectoryRoles: cfg.DirectoryRoles,
		Directory:      st,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.handler = handlers.New(handlers.Config{
		Store: st, Hub: a.hub, Auth: a.authn, Logger: log,
		Origins: cfg.FrontendURLs,
		OpenAPI: openapi.YAML, Demo: a.demo,
		Ready: ready, InsecureCookie: cfg.Dev,
		Limits: handlers.Limits{
			Publish: cfg.PublishRate, Connect: cfg.ConnectRate, State: cfg.StateRate,
			TrustedProxies: cfg.TrustedProxies,
		},
		Push:    pushConfig(cfg),
		Metrics: metrics,
	})
	return a, nil
}

// background starts what runs beside the HTTP server: the store's
// listener, which hands committed notifications to the hub, and the memory
// compactor. The returned function ends them and waits.
func (a *app) background(st store.Store, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := st.Listen(ctx, startSink{Fanout: handlers.NewFanout(a.hub, a.authn, log), hub: a.hub}); err != nil {
			log.Error("store listener stopped", "err", err)
		}
	})
	if a.pusher != nil {
		wg.Go(func() { a.marks.Run(ctx) })
		wg.Go(func() { a.pusher.Run(ctx) })
	}
	wg.Go(func() {
		m := a.handler.Metrics()
		j := centerJobs(st, a.retention)
		j.Log, j.Delivered, j.Swept = log, m.Delivered, m.Swept
		store.RunCenter(ctx, st, j)
	})
	wg.Go(func() {
		compactAfterBursts(ctx, defaultBurstPolicy, func() int { n, _ := a.hub.Stats(); return n }, log)
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// startSink is the store's sink with one difference: a resync with no
// stream open does nothing. The first LISTEN of every start resyncs, and
// with nobody connected there is nothing to catch up (or to log).
type startSink struct {
	*handlers.Fanout
	hub *sse.Hub
}

func (s startSink) Resync() {
	if n, _ := s.hub.Stats(); n > 0 {
		s.Fanout.Resync()
	}
}

// startAzure starts the Azure AD verifier when AZURE_ISSUER_BASE_URL is set
// (nil otherwise). Its keys load in the background: /readyz waits for them,
// HS256 tokens work meanwhile.
func startAzure(cfg config, log *slog.Logger) (*auth.Azure, error) {
	if cfg.AzureIssuer == "" {
		return nil, nil
	}
	azure, err := auth.NewAzure(auth.AzureConfig{
		Issuer: cfg.AzureIssuer, JWKSURI: cfg.AzureJWKSURI, Audiences: cfg.AzureAudience,
		TrustEmailClaim: cfg.TrustEmailClaim,
		Logger:          log.With("component", "azure"),
	})
	if err != nil {
		return nil, fmt.Errorf("AZURE_ISSUER_BASE_URL: %w", err)
	}
	log.Info("azure ad tokens enabled", "issuer", azure.Issuer(), "audiences", strings.Join(cfg.AzureAudience, ","))
	if cfg.JWTSecret == "" {
		log.Warn("session cookies (POST /session) are signed with a random per-process key: they end at a restart and work on this instance only; set JWT_SECRET, the same on every instance, to share them")
	}
	return azure, nil
}

func storeKind(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return "sqlite"
	}
	return "postgres"
}

// waitReady polls the store's Ping until it succeeds or limit passes.
func waitReady(ctx context.Context, st store.Store, limit time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := st.Ping(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			log.Warn("serving before the store is ready", "err", err)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pushInterval is how often streamed marks are saved and pushes decided:
// a quarter of PUSH_DELAY, at most a second.
func pushInterval(delay time.Duration) time.Duration { return min(delay/4, time.Second) }

// pushConfig is Web Push's part of the handlers' configuration: nil (off)
// without VAPID_PRIVATE_KEY.
func pushConfig(cfg config) *handlers.PushConfig {
	if cfg.VAPIDKey == nil {
		return nil
	}
	return &handlers.PushConfig{Key: cfg.VAPIDKey, Hosts: cfg.PushHosts}
}
