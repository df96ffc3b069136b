package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds keep every run finite: a run cannot publish for longer than
// maxDuration nor open more than maxStreams streams.
const (
	maxDuration    = 10 * time.Minute
	maxStreams     = 200_000
	maxRate        = 100_000
	maxInstances   = 8
	maxWorkers     = 64
	maxOldRows     = 10_000_000
	maxCenterCalls = 100_000
	// fdReserve is what a process keeps, out of its open-file limit, for
	// everything that is not a stream: publisher connections, stdio, pipes,
	// the issuer, DNS-free dials, the Go runtime.
	fdReserve = 300
	// streamsPerSourceAddr spreads streams over loopback source addresses
	// well below the 28,232 ephemeral ports (32768–60999) one address has.
	streamsPerSourceAddr = 10_000
)

// config is one load run, from the command line.
type config struct {
	URLs        []string
	Spawn       bool
	HeraldBin   string
	DatabaseURL string
	Instances   int
	Heartbeat   string
	ServerEnv   []string      // --server-env: added to a spawned server's environment
	OldRows     int           // --old-rows: old notifications stored before the server starts
	OldAge      time.Duration // how old they are
	Inbox       int           // --inbox: unread notifications stored in the first employee's inbox before the server starts
	CenterCalls int           // --center-calls: time this many of each notification-center call instead of a load run

	Streams      int
	Employees    int
	Roles        int
	EmployeeBase int64
	Seed         bool
	Transport    string

	Mode       string
	Rate       float64
	Duration   time.Duration
	Count      int
	Ephemeral  bool
	Publishers int
	PubTimeout time.Duration

	JWTSecret  string
	RS256      bool
	Audience   string
	IssuerAddr string

	ServerPIDs  []int
	Workers     int
	SourceAddrs []string
	ConnectConc int
	ConnectRate float64
	ConnectTO   time.Duration
	Settle      time.Duration
	Drain       time.Duration
	Strict      bool
	Label       string
	WarmCache   bool
	TokenTTL    time.Duration
}

// parseConfig reads the flags of a load run and checks them.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("herald-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("url", "", "Herald's base URL, loopback only (comma-separated for several instances); not with --spawn")
	fs.BoolVar(&c.Spawn, "spawn", false, "start Herald (and stop it at the end) instead of using --url")
	fs.StringVar(&c.HeraldBin, "herald-bin", "", "herald binary for --spawn (default: go build ./cmd/herald into a temp dir)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "--spawn: the store (default: SQLite in a temp dir); postgres://… for PostgreSQL")
	fs.IntVar(&c.Instances, "instances", 1, "--spawn: Herald processes on the same PostgreSQL database")
	fs.StringVar(&c.Heartbeat, "heartbeat", "", "--spawn: HEARTBEAT_INTERVAL of the server (default: the server's)")
	fs.Func("server-env", "--spawn: KEY=VALUE added to the server's environment (repeatable), e.g. GOROUTINE_STREAMS=true or DEBUG_ADDR=127.0.0.1:6060", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		c.ServerEnv = append(c.ServerEnv, v)
		return nil
	})
	fs.IntVar(&c.OldRows, "old-rows", 0, fmt.Sprintf("--spawn: store this many notifications older than --old-age (one copy each, over the bench's employees) before the server starts, for its retention sweep to delete while the run publishes (at most %d)", maxOldRows))
	fs.IntVar(&c.Inbox, "inbox", 0, fmt.Sprintf("--spawn: store this many unread notifications in the first employee's inbox before the server starts (at most %d)", maxOldRows))
	fs.IntVar(&c.CenterCalls, "center-calls", 0, fmt.Sprintf("instead of a load run, time this many of each notification-center call (the inbox's first page, its counts, a state change) on the first employee's inbox, over HTTP (at most %d)", maxCenterCalls))
	fs.DurationVar(&c.OldAge, "old-age", 100*24*time.Hour, "--old-rows: their age (default 100 days: older than the default RETENTION of 90 days)")
	fs.IntVar(&c.Streams, "streams", 100, fmt.Sprintf("streams to open (at most %d)", maxStreams))
	fs.IntVar(&c.Employees, "employees", 0, "employees the streams belong to (default: one per stream; at most 10 streams each)")
	fs.IntVar(&c.Roles, "roles", 0, "roles bench-r0… dealt to the employees (default 10 with --mode role)")
	fs.Int64Var(&c.EmployeeBase, "employee-base", 1_000_000, "the bench's employee IDs are base+1…base+employees")
	fs.BoolVar(&c.Seed, "seed", true, "put the bench's employees into the directory first")
	fs.StringVar(&c.Transport, "transport", "sse", "sse (GET /events), ws (GET /ws) or socketio (/socket.io/, WebSocket transport)")
	fs.StringVar(&c.Mode, "mode", "unicast", "unicast (a random employee each), role (a random role), broadcast (all)")
	fs.Float64Var(&c.Rate, "rate", 100, "publishes per second (0: only open streams)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to publish (at most 10m)")
	fs.IntVar(&c.Count, "count", 0, "stop after this many publishes (default: rate × duration)")
	fs.BoolVar(&c.Ephemeral, "ephemeral", false, `publish with "persist": false`)
	fs.IntVar(&c.Publishers, "publishers", 0, "concurrent publish requests (default: rate/100, 8…256)")
	fs.DurationVar(&c.PubTimeout, "publish-timeout", 10*time.Second, "timeout of one publish request")
	fs.StringVar(&c.JWTSecret, "jwt-secret", getenv("JWT_SECRET"), "HS256 secret of the server ($JWT_SECRET; generated with --spawn)")
	fs.BoolVar(&c.RS256, "rs256", false, "stream tokens are RS256 from the bench's own OIDC issuer (needs Herald's Azure verifier)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", 0, "lifetime of stream tokens (default: longer than the run); short ones make streams expire, reconnect with a fresh token and resume")
	fs.StringVar(&c.Audience, "audience", "api://herald-bench", "--rs256: the aud of the tokens (AZURE_AUDIENCE)")
	fs.StringVar(&c.IssuerAddr, "issuer-addr", "127.0.0.1:0", "--rs256: where the bench's issuer listens")
	pids := fs.String("server-pid", "", "PID(s) of the server(s) at --url, for RSS and CPU (comma-separated)")
	fs.IntVar(&c.Workers, "workers", 0, "worker processes holding the streams (default: as many as the open-file limit needs; 0 = this process when it fits)")
	srcs := fs.String("source-addrs", "", "loopback source addresses for streams, comma-separated (default: 127.0.0.2… one per 10,000 streams)")
	fs.IntVar(&c.ConnectConc, "connect-concurrency", 200, "streams connecting at once (over all processes)")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "at most this many new streams per second (0: as fast as they connect)")
	fs.BoolVar(&c.WarmCache, "warm-cache", false, "before the ramp, one request per employee so the server's login cache is warm")
	fs.DurationVar(&c.ConnectTO, "connect-timeout", 30*time.Second, "timeout of one stream's connect")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "wait before sampling the server's memory")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "after publishing, wait at most this long for deliveries in flight")
	fs.StringVar(&c.Label, "label", "", "a name for this run in the report (runs with the same label and command are summarized together)")
	fs.BoolVar(&c.Strict, "strict", true, "exit with an error when events were lost, duplicated or cross-delivered")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.URLs = splitList(*urls)
	c.SourceAddrs = splitList(*srcs)
	for _, p := range splitList(*pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return config{}, fmt.Errorf("--server-pid: %q is not a process ID", p)
		}
		c.ServerPIDs = append(c.ServerPIDs, pid)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

// defaults fills what depends on other flags.
func (c *config) defaults() {
	if c.Employees == 0 {
		c.Employees = c.Streams
	}
	if c.Roles == 0 && c.Mode == "role" {
		c.Roles = 10
	}
	if c.Publishers == 0 {
		c.Publishers = min(256, max(8, int(c.Rate/100)))
	}
	if len(c.SourceAddrs) == 0 {
		n := max(1, (c.Streams+streamsPerSourceAddr-1)/streamsPerSourceAddr)
		for i := range n {
			c.SourceAddrs = append(c.SourceAddrs, fmt.Sprintf("127.0.%d.%d", (i+2)/256, (i+2)%256))
		}
	}
}

// validate reports every problem at once.
func (c *config) validate() error {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	switch {
	case c.Spawn && len(c.URLs) > 0:
		bad("--url and --spawn exclude each other")
	case !c.Spawn && len(c.URLs) == 0:
		bad("give --url of a running Herald, or --spawn")
	}
	for _, u := range c.URLs {
		if err := checkLoopbackURL(u); err != nil {
			bad("--url: %v", err)
		}
	}
	if !c.Spawn && (c.DatabaseURL != "" || c.Instances != 1 || c.HeraldBin != "") {
		bad("--database-url, --instances and --herald-bin need --spawn")
	}
	if c.Instances < 1 || c.Instances > maxInstances {
		bad("--instances must be 1…%d", maxInstances)
	}
	if c.Instances > 1 && !isPostgres(c.DatabaseURL) {
		bad("--instances %d needs --database-url postgres://… (SQLite is one instance)", c.Instances)
	}
	if c.DatabaseURL != "" && !isPostgres(c.DatabaseURL) && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		bad("--database-url must be sqlite:PATH or postgres://…")
	}
	if isPostgres(c.DatabaseURL) {
		if err := checkLoopbackURL(c.DatabaseURL); err != nil {
			bad("--database-url: %v", err)
		}
	}
	if c.OldRows < 0 || c.OldRows > maxOldRows || c.OldAge <= 0 {
		bad("--old-rows must be 0…%d and --old-age positive", maxOldRows)
	}
	if c.Inbox < 0 || c.Inbox > maxOldRows || c.CenterCalls < 0 || c.CenterCalls > maxCenterCalls {
		bad("--inbox must be 0…%d and --center-calls 0…%d", maxOldRows, maxCenterCalls)
	}
	if c.Inbox > 0 && (!c.Spawn || !c.Seed) {
		bad("--inbox needs --spawn and --seed (it writes into the database before the server starts)")
	}
	if c.OldRows > 0 && (!c.Spawn || !c.Seed) {
		bad("--old-rows needs --spawn and --seed (it writes into the database before the server starts)")
	}
	problems = append(problems, c.loadProblems()...)
	if c.Workers < 0 || c.Workers > maxWorkers {
		bad("--workers must be 0…%d", maxWorkers)
	}
	for _, a := range c.SourceAddrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			bad("--source-addrs: %q is not a loopback address", a)
		}
	}
	if c.Drain < 0 || c.Drain > time.Minute || c.Settle < 0 || c.Settle > time.Minute {
		bad("--drain and --settle must be 0…1m")
	}
	if c.ConnectConc < 1 || c.ConnectTO <= 0 {
		bad("--connect-concurrency and --connect-timeout must be positive")
	}
	if !c.Spawn && c.JWTSecret == "" && !c.RS256 {
		bad("set --jwt-secret (or JWT_SECRET) to the server's secret, or use --rs256")
	}
	if c.TokenTTL != 0 && c.TokenTTL < 2*time.Second {
		bad("--token-ttl must be at least 2s")
	}
	if err := checkLoopbackAddr(c.IssuerAddr); err != nil {
		bad("--issuer-addr: %v", err)
	}
	if len(problems) > 0 {
		return errors.New("invalid flags:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

// loadProblems checks the size and shape of the load.
func (c *config) loadProblems() []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if c.Streams < 1 || c.Streams > maxStreams {
		bad("--streams must be 1…%d", maxStreams)
	}
	if c.Employees < 1 || c.Employees > maxStreams || c.Streams > 10*c.Employees {
		bad("--employees must be 1…%d and at least streams/10 (Herald allows 10 streams per employee)", maxStreams)
	}
	if c.Transport != "sse" && c.Transport != "ws" && c.Transport != "socketio" {
		bad("--transport must be sse, ws or socketio")
	}
	if c.Mode != "unicast" && c.Mode != "role" && c.Mode != "broadcast" {
		bad("--mode must be unicast, role or broadcast")
	}
	if c.Rate < 0 || c.Rate > maxRate {
		bad("--rate must be 0…%d", maxRate)
	}
	if c.Duration < 0 || c.Duration > maxDuration {
		bad("--duration must be 0…%v", maxDuration)
	}
	if c.Count < 0 || (c.Count > 0 && c.Rate == 0) || c.publishTime() > maxDuration {
		bad("--count needs --rate, and count ÷ rate must be at most %v", maxDuration)
	}
	return problems
}

// publishTime is how long publishing lasts: the duration, or the time
// --count publishes take at the rate when that is shorter.
func (c *config) publishTime() time.Duration {
	if c.Count > 0 && c.Rate > 0 {
		return min(c.Duration, time.Duration(float64(c.Count)/c.Rate*float64(time.Second)))
	}
	return c.Duration
}

func isPostgres(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// checkLoopbackURL accepts http(s) and postgres URLs whose host is a
// loopback address or "localhost": load runs never leave the machine.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch u.Scheme {
	case "http", "postgres", "postgresql":
	default:
		return fmt.Errorf("%q: scheme must be http (or postgres for a database)", raw)
	}
	if u.Host == "" && u.Scheme != "http" {
		return nil // a PostgreSQL URL without host uses the local socket
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q is not on loopback (127.0.0.0/8, ::1 or localhost)", raw)
	}
	return nil
}

// checkLoopbackAddr accepts host:port on loopback.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%q is not on loopback", addr)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
