package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/sqlite"
)

// shutdownTimeout bounds a graceful stop (SIGTERM): in-flight publishes
// finish, streams are closed so clients reconnect elsewhere.
const shutdownTimeout = 10 * time.Second

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens the store a DATABASE_URL names; pgOpts configure a
// PostgreSQL store. serving takes SQLite's instance lock: only herald serve
// does, so a second server on one file refuses to start while the CLI
// commands still work beside a running one.
func openStore(ctx context.Context, dsn string, serving bool, pgOpts ...postgres.Option) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if serving {
			return sqlite.Open(ctx, dsn, sqlite.InstanceLock())
		}
		return sqlite.Open(ctx, dsn)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn, pgOpts...)
	}
	return nil, fmt.Errorf("DATABASE_URL: unsupported scheme in %q", dsn)
}

// serve runs Herald until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	if cfg.Dev && cfg.JWTSecret == "" {
		cfg.JWTSecret = randomSecret()
	}
	if cfg.JWTSecret != "" && len(cfg.JWTSecret) < auth.MinSecretBytes {
		log.Warn("JWT_SECRET is shorter than 32 bytes; HS256 wants at least 256 bits")
	}
	st, err := openStore(ctx, cfg.DatabaseURL, true, postgres.WithLogger(log))
	if err != nil {
		return err
	}
	defer st.Close()

	var demo *handlers.Demo
	if cfg.Dev {
		if demo, err = seedDemo(ctx, st, []byte(cfg.JWTSecret)); err != nil {
			return err
		}
	}
	hub := sse.NewHub()
	azure, err := startAzure(cfg, log)
	if err != nil {
		return err
	}
	var external auth.TokenVerifier
	var ready func(context.Context) error
	if azure != nil {
		defer azure.Close() // stops the key loader and background refresh
		external, ready = azure, azure.Ready
	}
	authn, err := auth.New(auth.Config{
		Secret:         []byte(cfg.JWTSecret),
		External:       external,
		Cookie:         cfg.TokenCookie,
		PublisherRoles: cfg.PublisherRoles,
		Directory:      st,
	})
	if err != nil {
		return err
	}
	h := handlers.New(handlers.Config{
		Store: st, Hub: hub, Auth: authn, Logger: log,
		Origins: cfg.FrontendURLs, Heartbeat: cfg.Heartbeat,
		OpenAPI: openapi.YAML, Demo: demo,
		GoroutineStreams: cfg.GoroutineStreams,
		Ready:            ready, InsecureCookie: cfg.Dev,
	})

	// The listener goroutine hands committed notifications to the hub; it
	// ends when listenCtx does, after the HTTP server has stopped.
	listenCtx, stopListening := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := st.Listen(listenCtx, handlers.NewFanout(hub, authn, log)); err != nil {
			log.Error("store listener stopped", "err", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		compactAfterBursts(listenCtx, defaultBurstPolicy, func() int { n, _ := hub.Stats(); return n }, log)
	}()
	defer func() {
		stopListening()
		wg.Wait()
	}()

	// Accept requests once the listener is up, so the first publishes reach
	// the first streams; a store that is down at start does not block it
	// (readyz says so, and streams catch up).
	waitReady(ctx, st, 10*time.Second, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No ReadTimeout/WriteTimeout: they would cut streams. Streams set a
		// deadline per write; REST bodies get a per-request read deadline.
	}
	log.Info("listening", "addr", ln.Addr().String(), "store", storeKind(cfg.DatabaseURL), "version", buildVersion())
	if cfg.Dev {
		printDevBanner(stdout, ln.Addr().String(), cfg.JWTSecret, demo)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	h.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Shutdown stops accepting and waits for in-flight requests; streams
	// never finish by themselves, so the hub ends them (clients reconnect
	// elsewhere and replay).
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(shutdownCtx) }()
	hub.Close()
	if err := <-shut; err != nil {
		log.Warn("shutdown incomplete", "err", err)
		srv.Close()
	}
	if err := h.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	log.Info("stopped")
	return nil
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
		Logger: log.With("component", "azure"),
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
