package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// runner is one load run: it owns the spawned servers, the issuer, the
// worker processes and the temp dir, and stops them all in cleanup.
type runner struct {
	cfg     config
	log     *slog.Logger
	stderr  io.Writer
	command string

	limit   fileLimit
	tmp     string
	servers []*server
	issuer  *issuer
	urls    []string
	pids    []int
	auth    authConfig
	store   string
	dsn     string // a spawned server's DATABASE_URL
	runID   string
	fresh   bool // the directory was created by this run in a new database
	client  *http.Client
	pubTok  string
	groups  []group
}

// runLoad runs one load scenario and prints its report on stdout.
func runLoad(ctx context.Context, cfg config, command string, stdout, stderr io.Writer) error {
	// Whatever happens, the run ends: publishing, ramp, drain and cleanup
	// all fit well within this.
	ctx, cancel := context.WithTimeout(ctx, cfg.publishTime()+cfg.Drain+20*time.Minute)
	defer cancel()
	r := newRunner(cfg, command, stderr)
	defer r.cleanup()
	load := loadAverage()
	if err := r.setup(ctx); err != nil {
		return err
	}
	rep, err := r.measure(ctx)
	if err != nil {
		return err
	}
	rep.LoadAvg = load
	if err := writeReport(stdout, rep); err != nil {
		return err
	}
	if cfg.Strict && !rep.OK {
		return fmt.Errorf("run failed its checks: %s", strings.Join(rep.Problems, "; "))
	}
	return nil
}

// newRunner returns the runner of one run, logging to stderr.
func newRunner(cfg config, command string, stderr io.Writer) *runner {
	return &runner{
		cfg: cfg, stderr: stderr, command: command,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
}

// setup starts what the run needs: the issuer, the servers (or checks the
// given ones), the directory, and checks that a stream token is accepted.
func (r *runner) setup(ctx context.Context) error {
	r.limit = raiseFileLimit()
	r.runID = randomSecret()[:12]
	secret := r.cfg.JWTSecret
	if r.cfg.Spawn && secret == "" {
		secret = randomSecret()
	}
	ttl := r.cfg.publishTime() + r.cfg.Drain + 30*time.Minute
	if r.cfg.TokenTTL > 0 {
		ttl = r.cfg.TokenTTL
	}
	r.auth = authConfig{Kind: "hs256", Secret: secret, TTL: ttl}
	if r.cfg.RS256 {
		is, err := startIssuer(r.cfg.IssuerAddr, r.cfg.Audience, ttl)
		if err != nil {
			return err
		}
		r.issuer = is
		r.auth = is.auth
		r.auth.Secret = secret
		r.log.Info("oidc issuer up", "issuer", is.url)
	}
	m, err := newMinter(r.auth)
	if err != nil {
		return err
	}
	if r.pubTok, err = m.publisher(time.Now()); err != nil {
		return err
	}
	if r.cfg.Spawn {
		err = r.spawn(ctx)
	} else {
		r.urls, r.pids, r.store = r.cfg.URLs, r.cfg.ServerPIDs, "external"
		if r.cfg.Seed {
			r.log.Info("seeding employees over HTTP", "employees", r.cfg.Employees)
			err = seedHTTP(ctx, r.client, r.urls[0], r.pubTok, r.directory(), 32)
		}
	}
	if err != nil {
		return err
	}
	if err := r.preflight(ctx, m); err != nil {
		return err
	}
	return r.warmUp(ctx, m)
}

// warmUpStreams is how many streams warmUp opens and closes on each server
// before its idle memory is sampled, as the Socket.IO peer's load tool
// does with 50 warm-up clients: the first streams page in code and fill
// caches that every later stream shares, a cost that is not per stream.
const warmUpStreams = 50

// warmUp opens and closes warmUpStreams streams, of the transport under
// test, on every server.
func (r *runner) warmUp(ctx context.Context, m *minter) error {
	dir := r.directory()
	for _, u := range r.urls {
		for i := range min(warmUpStreams, dir.Count) {
			tok, err := m.employee(dir.id(i), time.Now())
			if err != nil {
				return err
			}
			if err := openAndClose(ctx, u, r.cfg.Transport, tok); err != nil {
				return fmt.Errorf("warm-up stream on %s: %w", u, err)
			}
		}
	}
	return nil
}

// openAndClose opens one stream, waits for its first bytes and closes it.
func openAndClose(ctx context.Context, base, transport, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if transport == "socketio" {
		u, err := url.Parse(base)
		if err != nil {
			return err
		}
		c, err := newDialer(nil, 10*time.Second).openSIO(ctx, u, token, -1)
		if err == nil {
			c.close()
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	if err != nil {
		return err
	}
	if transport == "ws" {
		req.URL.Path = "/ws"
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	if transport != "ws" {
		_, err = resp.Body.Read(make([]byte, 64))
	}
	return err
}

func (r *runner) directory() employees {
	return employees{Count: r.cfg.Employees, Base: r.cfg.EmployeeBase, Roles: r.cfg.Roles}
}

// spawn builds (if needed) and starts the Herald instances, seeding the
// directory through the CLI before the first one starts.
func (r *runner) spawn(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return err
	}
	r.tmp = tmp
	bin := r.cfg.HeraldBin
	if bin == "" {
		r.log.Info("building herald", "dir", tmp)
		if bin, err = buildHerald(ctx, tmp); err != nil {
			return err
		}
	}
	dsn := r.cfg.DatabaseURL
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(tmp, "herald.db")
		// Old rows take the first seqs: a stream that saw no id yet does
		// not know its position.
		r.fresh = r.cfg.Seed && r.cfg.OldRows == 0 && r.cfg.Inbox == 0
	}
	r.dsn = dsn
	r.store = "sqlite"
	if isPostgres(dsn) {
		r.store = "postgres"
	}
	if r.cfg.Seed {
		r.log.Info("seeding employees with herald employees import", "employees", r.cfg.Employees)
		if err := importCSV(ctx, bin, dsn, tmp, r.directory()); err != nil {
			return err
		}
	}
	if r.cfg.OldRows > 0 {
		start := time.Now()
		r.log.Info("storing old notifications", "rows", r.cfg.OldRows, "age", r.cfg.OldAge)
		if err := seedOldRows(ctx, dsn, r.directory(), r.cfg.OldRows, time.Now().Add(-r.cfg.OldAge)); err != nil {
			return err
		}
		r.log.Info("old notifications stored", "took", time.Since(start).Round(time.Millisecond))
	}
	if r.cfg.Inbox > 0 {
		first := employees{Count: 1, Base: r.cfg.EmployeeBase}
		r.log.Info("storing the first employee's inbox", "rows", r.cfg.Inbox, "employee", first.id(0))
		spec := rowSpec{n: r.cfg.Inbox, created: time.Now().Add(-time.Hour), typ: inboxType, publisher: inboxPublisher, asLived: true}
		if err := seedRows(ctx, dsn, first, spec); err != nil {
			return err
		}
	}
	// Load runs measure Herald, not its rate limits: they are turned off.
	env := append(baseEnv(), "HTTP_ADDR=127.0.0.1:0", "DATABASE_URL="+dsn, "JWT_SECRET="+r.auth.Secret, "LOG_LEVEL=info",
		"PUBLISH_RATE=0", "CONNECT_RATE=0", "STATE_RATE=0")
	env = append(env, r.cfg.ServerEnv...)
	if r.cfg.Heartbeat != "" {
		env = append(env, "HEARTBEAT_INTERVAL="+r.cfg.Heartbeat)
	}
	if r.issuer != nil {
		env = append(env, "AZURE_ISSUER_BASE_URL="+r.issuer.url, "AZURE_AUDIENCE="+r.cfg.Audience)
	}
	for i := range r.cfg.Instances {
		s, err := startServer(ctx, bin, env, fmt.Sprintf("herald instance %d", i+1))
		if err != nil {
			if r.store == "postgres" && strings.Contains(err.Error(), "not supported") {
				return fmt.Errorf("this Herald build has no PostgreSQL store yet (it lands with the PostgreSQL branch): %w", err)
			}
			return err
		}
		r.servers = append(r.servers, s)
		r.urls = append(r.urls, s.URL)
		r.pids = append(r.pids, s.PID)
		r.log.Info("herald up", "url", s.URL, "pid", s.PID, "store", r.store)
	}
	return nil
}

// preflight checks, on every instance, that the first employee's stream
// token is accepted, so a misconfiguration fails with one clear message
// rather than N connect errors.
func (r *runner) preflight(ctx context.Context, m *minter) error {
	emp := r.directory().id(0)
	tok, err := m.employee(emp, time.Now())
	if err != nil {
		return err
	}
	for _, u := range r.urls {
		status, body, err := doJSON(ctx, r.client, http.MethodGet, u+"/notifications?limit=1", tok, nil)
		// 503: not ready yet (Azure keys still loading); wait for it.
		for deadline := time.Now().Add(30 * time.Second); err == nil && status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
			if err = sleepFor(ctx, 200*time.Millisecond); err == nil {
				status, body, err = doJSON(ctx, r.client, http.MethodGet, u+"/notifications?limit=1", tok, nil)
			}
		}
		if err != nil {
			return fmt.Errorf("preflight %s: %w", u, err)
		}
		switch {
		case status == http.StatusOK:
			continue
		case status == http.StatusUnauthorized && r.cfg.RS256:
			return fmt.Errorf("preflight %s: the server refused the bench's RS256 token (%s). Herald's Azure verifier is not on this build yet, "+
				"or the server's AZURE_ISSUER_BASE_URL/AZURE_AUDIENCE are not the bench's issuer %s and audience %s", u, bytes.TrimSpace(body), r.issuer.url, r.cfg.Audience)
		case status == http.StatusForbidden:
			return fmt.Errorf("preflight %s: employee %d is not in the directory (%s): seed with --seed", u, emp, body)
		}
		return fmt.Errorf("preflight %s: GET /notifications answered %d: %s", u, status, body)
	}
	return nil
}

// cleanup stops workers, servers and the issuer, and removes the temp dir.
func (r *runner) cleanup() {
	for _, g := range r.groups {
		g.Close()
	}
	for _, s := range r.servers {
		s.stop()
	}
	if r.cfg.OldRows > 0 && r.dsn != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := removeOldRows(ctx, r.dsn); err != nil {
			r.log.Warn("removing the old rows left failed", "err", err)
		}
		cancel()
	}
	if r.issuer != nil {
		r.issuer.Close()
	}
	if r.tmp != "" {
		_ = os.RemoveAll(r.tmp)
	}
}

// startGroups splits the streams over this process or worker processes:
// one process may hold limit−reserve descriptors, so beyond that the
// streams go to workers, each with a contiguous share.
func (r *runner) startGroups() error {
	workers := r.cfg.Workers
	budget := int(r.limit.Soft) - fdReserve
	if workers == 0 && r.cfg.Streams+r.cfg.Publishers > budget {
		workers = (r.cfg.Streams + budget - 1) / max(1, budget)
	}
	base := workerConfig{
		URLs: r.urls, SourceAddrs: r.cfg.SourceAddrs, Transport: r.cfg.Transport, Mode: r.cfg.Mode,
		Ephemeral: r.cfg.Ephemeral, Directory: r.directory(), Auth: r.auth,
		RunID: r.runID, FreshDirectory: r.fresh, WarmCache: r.cfg.WarmCache, ConnectConc: r.cfg.ConnectConc, ConnectRate: r.cfg.ConnectRate, ConnectTimeout: r.cfg.ConnectTO,
		MaxPublishes: publishPlan{Rate: r.cfg.Rate, Duration: r.cfg.Duration, Count: r.cfg.Count}.total(),
		From:         0, To: r.cfg.Streams,
	}
	if workers == 0 {
		set, err := newStreamSet(base, r.log)
		if err != nil {
			return err
		}
		r.groups = []group{&localGroup{set: set}}
		return nil
	}
	self, err := selfExecutable()
	if err != nil {
		return err
	}
	r.log.Info("splitting streams over worker processes", "workers", workers, "file_limit", r.limit.Soft)
	for w := range workers {
		wc := base
		wc.Worker = w
		wc.From, wc.To = r.cfg.Streams*w/workers, r.cfg.Streams*(w+1)/workers
		wc.ConnectConc = max(1, r.cfg.ConnectConc/workers)
		wc.ConnectRate = r.cfg.ConnectRate / float64(workers)
		g, err := startWorker(self, wc, r.stderr)
		if err != nil {
			return err
		}
		r.groups = append(r.groups, g)
	}
	return nil
}

// forEachGroup runs f on every group at once and joins their errors.
func (r *runner) forEachGroup(f func(i int, g group) error) error {
	errs := make([]error, len(r.groups))
	var wg sync.WaitGroup
	for i, grp := range r.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, grp)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepareAll has every group mint its tokens (and warm the cache), so that
// the ramps, started afterwards, start together and measure connects only.
func (r *runner) prepareAll(ctx context.Context) error {
	return r.forEachGroup(func(_ int, g group) error { return g.Prepare(ctx) })
}

// openAll opens all the groups' streams at once and merges their reports.
// The streams live on ctx (the run's), not on a context of this call.
func (r *runner) openAll(ctx context.Context) (ConnectReport, error) {
	reps := make([]ConnectReport, len(r.groups))
	err := r.forEachGroup(func(i int, g group) (err error) {
		reps[i], err = g.Open(ctx)
		return err
	})
	if err != nil {
		return ConnectReport{}, err
	}
	return mergeConnect(reps), nil
}

// finishAll stops every group and merges what they received.
func (r *runner) finishAll(ctx context.Context) (GroupResult, error) {
	res := make([]GroupResult, len(r.groups))
	g, gctx := errgroup.WithContext(ctx)
	for i, grp := range r.groups {
		g.Go(func() error {
			out, err := grp.Finish(gctx)
			res[i] = out
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return GroupResult{}, err
	}
	return mergeResults(res), nil
}

func (r *runner) received() int64 {
	var n int64
	for _, g := range r.groups {
		n += g.Received()
	}
	return n
}

// errServerDied is returned when a spawned server exits during the run.
var errServerDied = errors.New("a spawned server exited during the run")
