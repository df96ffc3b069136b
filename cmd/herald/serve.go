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
// PostgreSQL store.
func openStore(ctx context.Context, dsn string, pgOpts ...postgres.Option) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
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
	st, err := openStore(ctx, cfg.DatabaseURL, postgres.WithLogger(log))
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
	authn, err := auth.New(auth.Config{
		Secret:         []byte(cfg.JWTSecret),
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
	defer func() {
		stopListening()
		wg.Wait()
	}()

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
	log.Info("stopped")
	return nil
}

func storeKind(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return "sqlite"
	}
	return "postgres"
}
