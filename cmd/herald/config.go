package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is `herald serve`'s configuration: each field comes from its
// environment variable (the seed systems' names) and can be overridden by a
// flag of the same name in kebab case.
type config struct {
	HTTPAddr       string
	DatabaseURL    string
	FrontendURLs   []string
	AzureIssuer    string
	AzureJWKSURI   string
	AzureAudience  []string
	JWTSecret      string
	TokenCookie    string
	PublisherRoles []string
	Heartbeat      time.Duration
	LogLevel       slog.Level
	LogFormat      string
	Dev            bool
	// GoroutineStreams disables stream parking (for comparisons; see README).
	GoroutineStreams bool
	// DebugAddr, when set, serves net/http/pprof there (never on HTTP_ADDR).
	DebugAddr string
	// MaxStreams is the instance's stream limit; MaxStreamAge ends streams
	// after about that long (0: never).
	MaxStreams   int
	MaxStreamAge time.Duration

	hardening
}

// hardening is issue 14's part of the configuration (identity and rate
// limits), kept in one block: see hardeningSettings and loadHardening.
type hardening struct {
	DirectoryRoles  []string       // DIRECTORY_ROLES
	TrustEmailClaim bool           // AZURE_TRUST_EMAIL_CLAIM
	PublishRate     float64        // PUBLISH_RATE, per second; 0 off
	ConnectRate     float64        // CONNECT_RATE, per second; 0 off
	StateRate       float64        // STATE_RATE, per second; 0 off
	TrustedProxies  []netip.Prefix // TRUSTED_PROXIES
}

// setting is one configuration variable.
type setting struct {
	env, def, help string
	value          string
}

var settingsOrder = []string{
	"HTTP_ADDR", "DATABASE_URL", "FRONTEND_URL", "AZURE_ISSUER_BASE_URL", "AZURE_JWKS_URI",
	"AZURE_AUDIENCE", "JWT_SECRET", "TOKEN_COOKIE", "PUBLISHER_ROLES", "HEARTBEAT_INTERVAL",
	"LOG_LEVEL", "LOG_FORMAT", "MAX_STREAMS", "MAX_STREAM_AGE",
	// hardeningSettings, in this order:
	"DIRECTORY_ROLES", "AZURE_TRUST_EMAIL_CLAIM", "PUBLISH_RATE", "CONNECT_RATE", "STATE_RATE", "TRUSTED_PROXIES",
}

func newSettings() map[string]*setting {
	s := map[string]*setting{
		"HTTP_ADDR":             {def: ":3000", help: "listen address"},
		"DATABASE_URL":          {def: "sqlite:herald.db", help: "sqlite:PATH (one instance) or postgres://… (several)"},
		"FRONTEND_URL":          {def: "http://localhost:5173", help: "comma-separated allowed browser origins (CORS, WebSocket Origin)"},
		"AZURE_ISSUER_BASE_URL": {help: "Azure AD issuer, e.g. https://login.microsoftonline.com/{tenant}/v2.0; enables Azure tokens"},
		"AZURE_JWKS_URI":        {help: "override the key set URL (default: from OIDC discovery)"},
		"AZURE_AUDIENCE":        {help: "comma-separated accepted aud values (App ID URI and/or client ID)"},
		"JWT_SECRET":            {help: "enables HS256 tokens (cookie or bearer)"},
		"TOKEN_COOKIE":          {def: "token", help: "cookie name read for tokens"},
		"PUBLISHER_ROLES":       {def: "Notifications.Publish,service,admin", help: "roles that may publish"},
		"HEARTBEAT_INTERVAL":    {def: "15s", help: "SSE comment / WebSocket ping interval"},
		"LOG_LEVEL":             {def: "info", help: "debug, info, warn or error"},
		"LOG_FORMAT":            {def: "text", help: "text or json"},
		"MAX_STREAMS":           {def: "100000", help: "streams one instance holds at most, every transport counted; beyond, 503"},
		"MAX_STREAM_AGE":        {def: "1h", help: "streams are ended after this long (±20% jitter) so connections rebalance across instances; 0 never"},
	}
	for k, v := range hardeningSettings() {
		s[k] = v
	}
	return s
}

// hardeningSettings are issue 14's variables (see hardening).
func hardeningSettings() map[string]*setting {
	return map[string]*setting{
		"DIRECTORY_ROLES":         {def: "Directory.Write,admin", help: "roles that may change the employee directory (publishing alone does not)"},
		"AZURE_TRUST_EMAIL_CLAIM": {def: "false", help: "accept Azure's email claim as the login when upn and preferred_username are absent (users can often edit it)"},
		"PUBLISH_RATE":            {def: "500", help: "publishes per second per publisher (employee or service), burst twice that; 0 off"},
		"CONNECT_RATE":            {def: "0", help: "stream opens per second per client IP over every transport, burst twice that; 0 off"},
		"STATE_RATE":              {def: "20", help: "state changes and preference writes per second per employee, burst twice that; 0 off"},
		"TRUSTED_PROXIES":         {help: "comma-separated CIDRs of proxies whose X-Forwarded-For names the client IP"},
	}
}

// loadHardening parses and checks issue 14's variables; v reads a
// setting, bad reports a problem.
func loadHardening(v func(string) string, bad func(env, format string, a ...any)) hardening {
	var h hardening
	h.DirectoryRoles = splitList(v("DIRECTORY_ROLES"))
	trust, err := strconv.ParseBool(v("AZURE_TRUST_EMAIL_CLAIM"))
	if err != nil {
		bad("AZURE_TRUST_EMAIL_CLAIM", "%q is not true or false", v("AZURE_TRUST_EMAIL_CLAIM"))
	}
	h.TrustEmailClaim = trust
	for _, r := range []struct {
		env string
		dst *float64
	}{{"PUBLISH_RATE", &h.PublishRate}, {"CONNECT_RATE", &h.ConnectRate}, {"STATE_RATE", &h.StateRate}} {
		f, err := strconv.ParseFloat(v(r.env), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1e6 {
			bad(r.env, "%q is not a rate per second from 0 (off) to 1000000", v(r.env))
		}
		*r.dst = f
	}
	for _, c := range splitList(v("TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c) // a single address is its own /32 or /128
			if aerr != nil {
				bad("TRUSTED_PROXIES", "%q is not a CIDR like 10.0.0.0/8 or an IP address", c)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		h.TrustedProxies = append(h.TrustedProxies, p.Masked())
	}
	return h
}

func flagName(env string) string { return strings.ToLower(strings.ReplaceAll(env, "_", "-")) }

// loadConfig reads the environment, then the flags, and validates the result.
// Every problem is reported at once, naming the variable to fix.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	settings := newSettings()
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, env := range settingsOrder {
		s := settings[env]
		s.value = s.def
		if v := getenv(env); v != "" {
			s.value = v
		}
		fs.StringVar(&s.value, flagName(env), s.value, s.help+" ($"+env+")")
	}
	var cfg config
	fs.BoolVar(&cfg.GoroutineStreams, "goroutine-streams", getenv("GOROUTINE_STREAMS") == "true",
		"keep each SSE stream on its own net/http goroutine instead of parking idle HTTP/1.1 streams ($GOROUTINE_STREAMS); costs more memory")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", getenv("DEBUG_ADDR"),
		"serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 ($DEBUG_ADDR); off when empty")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: generated secret, demo employees, demo page, printed curl commands")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: herald serve [flags]\n\nEach flag defaults to its environment variable.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	v := func(env string) string { return strings.TrimSpace(settings[env].value) }

	var problems []string
	bad := func(env, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("%s (--%s): %s", env, flagName(env), fmt.Sprintf(format, a...)))
	}
	cfg.HTTPAddr = v("HTTP_ADDR")
	if _, _, err := splitHostPort(cfg.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "%q is not host:port (%v)", cfg.HTTPAddr, err)
	}
	cfg.DatabaseURL = v("DATABASE_URL")
	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "sqlite:"):
		if strings.TrimPrefix(cfg.DatabaseURL, "sqlite:") == "" {
			bad("DATABASE_URL", "sqlite: needs a file path, e.g. sqlite:herald.db")
		}
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
	default:
		bad("DATABASE_URL", "must start with sqlite: or postgres://")
	}
	for _, o := range splitList(v("FRONTEND_URL")) {
		u, err := url.Parse(o)
		if err == nil && strings.Contains(u.Host, "*") {
			// CORS would honour a wildcard and the WebSocket check would
			// not: refused, so both compare exact origins.
			bad("FRONTEND_URL", "%q: wildcard origins are not supported; list every origin, e.g. https://app.example.com,https://admin.example.com", o)
			continue
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("FRONTEND_URL", "%q is not an origin like https://app.example.com", o)
			continue
		}
		cfg.FrontendURLs = append(cfg.FrontendURLs, strings.TrimSuffix(o, "/"))
	}
	cfg.AzureIssuer = strings.TrimSuffix(v("AZURE_ISSUER_BASE_URL"), "/")
	cfg.AzureJWKSURI = v("AZURE_JWKS_URI")
	cfg.AzureAudience = splitList(v("AZURE_AUDIENCE"))
	if cfg.AzureIssuer != "" {
		if u, err := url.Parse(cfg.AzureIssuer); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			bad("AZURE_ISSUER_BASE_URL", "%q is not a URL", cfg.AzureIssuer)
		}
		if len(cfg.AzureAudience) == 0 {
			bad("AZURE_AUDIENCE", "required with AZURE_ISSUER_BASE_URL: the App ID URI and/or client ID tokens are issued for")
		}
	} else if cfg.AzureJWKSURI != "" || len(cfg.AzureAudience) > 0 {
		bad("AZURE_ISSUER_BASE_URL", "required when AZURE_JWKS_URI or AZURE_AUDIENCE is set")
	}
	cfg.JWTSecret = settings["JWT_SECRET"].value // spaces may be part of a secret
	cfg.TokenCookie = v("TOKEN_COOKIE")
	if cfg.TokenCookie == "" || strings.ContainsAny(cfg.TokenCookie, " ;,=\t") {
		bad("TOKEN_COOKIE", "%q is not a cookie name", cfg.TokenCookie)
	}
	cfg.PublisherRoles = splitList(v("PUBLISHER_ROLES"))
	d, err := time.ParseDuration(v("HEARTBEAT_INTERVAL"))
	switch {
	case err != nil:
		bad("HEARTBEAT_INTERVAL", "%q is not a duration like 15s", v("HEARTBEAT_INTERVAL"))
	case d < time.Second || d > 5*time.Minute:
		bad("HEARTBEAT_INTERVAL", "must be between 1s and 5m")
	}
	cfg.Heartbeat = d
	if err := cfg.LogLevel.UnmarshalText([]byte(v("LOG_LEVEL"))); err != nil {
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", v("LOG_LEVEL"))
	}
	cfg.LogFormat = strings.ToLower(v("LOG_FORMAT"))
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not text or json", v("LOG_FORMAT"))
	}
	if n, err := strconv.Atoi(v("MAX_STREAMS")); err != nil || n < 1 {
		bad("MAX_STREAMS", "%q is not a positive number", v("MAX_STREAMS"))
	} else {
		cfg.MaxStreams = n
	}
	if d, err := time.ParseDuration(v("MAX_STREAM_AGE")); err != nil && v("MAX_STREAM_AGE") != "0" || d < 0 || d > 0 && d < time.Minute {
		bad("MAX_STREAM_AGE", "%q is not 0 or a duration of a minute or more, like 1h", v("MAX_STREAM_AGE"))
	} else {
		cfg.MaxStreamAge = d
	}
	cfg.hardening = loadHardening(v, bad)
	if !cfg.Dev && cfg.JWTSecret == "" && cfg.AzureIssuer == "" {
		problems = append(problems, "no authentication configured: set JWT_SECRET (HS256 tokens), or AZURE_ISSUER_BASE_URL and AZURE_AUDIENCE (Azure AD tokens), or run with --dev")
	}
	if len(problems) > 0 {
		return config{}, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return cfg, nil
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
