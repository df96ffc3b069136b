package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/corp/herald/handlers/webpush"
)

// config is Herald's configuration. Every field is filled by one row of the
// table in options: from its environment variable, else from its flag (a
// flag wins over the environment), else from the row's default.
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
	TLSCertFile    string
	TLSKeyFile     string
	H2C            bool
	DebugAddr      string
	// GoroutineStreams keeps every stream on a goroutine instead of the
	// poller (for comparisons; see README).
	GoroutineStreams bool
	Dev              bool
	MaxStreams       int
	MaxStreamAge     time.Duration
	DirectoryRoles   []string
	TrustEmailClaim  bool
	PublishRate      float64
	ConnectRate      float64
	StateRate        float64
	Retention        time.Duration
	TrustedProxies   []netip.Prefix
	VAPIDKey         *webpush.Key
	VAPIDSubject     string
	PushDelay        time.Duration
	PushHosts        webpush.Hosts

	// Used by herald send only.
	HeraldURL   string
	HeraldToken string

	// explicit names the rows given in the environment or as a flag.
	explicit map[string]bool
}

// option is one row of the configuration table.
type option struct {
	// name is the environment variable; the flag is its kebab-case form
	// unless flag says otherwise. A flag-only row has no variable.
	name     string
	flag     string
	flagOnly bool
	// def is the default, as it would be written in the environment;
	// defText, when set, is how --help and the README describe it instead.
	def, defText string
	// help is one sentence for --help and the README (Markdown code spans
	// are shown without their backticks on a terminal).
	help  string
	parse parser
	// commands besides serve that read this row; tool is set when serve
	// does not read it at all.
	also []string
	tool bool
}

// options is the configuration table: every variable Herald reads, once.
// Adding a setting is one row here and the field of config it fills.
func (c *config) options() []option {
	return []option{
		{name: "HTTP_ADDR", def: ":3000", help: "listen address, `host:port` (`--dev` without it: `127.0.0.1:3000`, this machine only)", parse: address(&c.HTTPAddr)},
		{name: "DATABASE_URL", def: "sqlite:herald.db", help: "`sqlite:PATH` (embedded, one instance) or `postgres://…` (several instances)", parse: databaseURL(&c.DatabaseURL), also: []string{"migrate", "employees"}},
		{name: "FRONTEND_URL", def: "http://localhost:5173", help: "comma-separated browser origins allowed by CORS (with credentials) and the streams' `Origin` check; exact origins only (a wildcard such as `https://*.example.com` is refused)", parse: origins(&c.FrontendURLs)},
		{name: "AZURE_ISSUER_BASE_URL", help: "enables Azure AD tokens: `https://login.microsoftonline.com/{tenant}/v2.0`; keys through OIDC discovery", parse: issuerURL(&c.AzureIssuer)},
		{name: "AZURE_JWKS_URI", defText: "from discovery", help: "the key set URL, to bypass discovery", parse: httpURL(&c.AzureJWKSURI)},
		{name: "AZURE_AUDIENCE", help: "comma-separated accepted `aud` values (App ID URI and/or client ID); required with Azure", parse: list(&c.AzureAudience)},
		{name: "JWT_SECRET", defText: "— (`--dev`: generated once, kept beside the database)", help: "enables HS256 tokens (cookie or bearer) and signs session cookies; 32 bytes or more", parse: secret(&c.JWTSecret), also: []string{"token", "send"}},
		{name: "TOKEN_COOKIE", def: "token", help: "name of the cookie read for tokens and set by `POST /session`", parse: cookieName(&c.TokenCookie)},
		{name: "PUBLISHER_ROLES", def: "Notifications.Publish,service,admin", help: "comma-separated roles that may publish", parse: list(&c.PublisherRoles), also: []string{"send"}},
		{name: "HEARTBEAT_INTERVAL", def: "15s", help: "SSE comment / WebSocket ping interval, 1s–5m", parse: duration(&c.Heartbeat, time.Second, 5*time.Minute)},
		{name: "LOG_LEVEL", def: "info", help: "`debug`, `info`, `warn` or `error`", parse: logLevel(&c.LogLevel)},
		{name: "LOG_FORMAT", def: "text", help: "`text` or `json`", parse: oneOf(&c.LogFormat, "text", "json")},
		{name: "TLS_CERT_FILE", help: "PEM certificate chain: Herald serves HTTPS with HTTP/2 itself (with `TLS_KEY_FILE`)", parse: filePath(&c.TLSCertFile)},
		{name: "TLS_KEY_FILE", help: "PEM private key of `TLS_CERT_FILE`", parse: filePath(&c.TLSKeyFile)},
		{name: "H2C", def: "false", help: "also accept cleartext HTTP/2 (h2c, prior knowledge) on `HTTP_ADDR`, for a proxy that speaks it; without TLS only", parse: boolean(&c.H2C)},
		{name: "DEBUG_ADDR", help: "serve Go's profiler (`/debug/pprof/`) on this address, e.g. `127.0.0.1:6060`; keep it private", parse: optionalAddress(&c.DebugAddr)},
		{name: "DIRECTORY_ROLES", def: "Directory.Write,admin", help: "comma-separated roles that may change the employee directory (publishing alone does not)", parse: list(&c.DirectoryRoles)},
		{name: "AZURE_TRUST_EMAIL_CLAIM", def: "false", help: "accept Azure's `email` claim as the login when `upn` and `preferred_username` are absent (users can often edit it)", parse: boolean(&c.TrustEmailClaim)},
		{name: "PUBLISH_RATE", def: "500", help: "publishes per second per publisher (employee or service), burst twice that; `0` off", parse: rate(&c.PublishRate)},
		{name: "CONNECT_RATE", def: "0", help: "stream opens per second per client IP over every transport, burst twice that; `0` off (see Limits)", parse: rate(&c.ConnectRate)},
		{name: "STATE_RATE", def: "20", help: "state changes and preference writes per second per employee, burst twice that; `0` off", parse: rate(&c.StateRate)},
		{name: "RETENTION", def: "90d", help: "notifications older than this are deleted in the background (`30d`, `720h`; `0` keeps everything); expired ones go soon after they expire either way", parse: retention(&c.Retention)},
		{name: "TRUSTED_PROXIES", help: "comma-separated CIDRs of proxies whose `X-Forwarded-For` entry names the client IP", parse: prefixes(&c.TrustedProxies)},
		{name: "MAX_STREAMS", def: "100000", help: "streams one instance holds at most, every transport counted; beyond, `503 unavailable` with `Retry-After`", parse: count(&c.MaxStreams, 1, 10_000_000)},
		{name: "MAX_STREAM_AGE", def: "1h", help: "a stream is ended (`event: closed`, reason `max_age`) after this long, ± 20% jitter, so connections rebalance across instances; `0` never, else at least `1m`", parse: maxAge(&c.MaxStreamAge)},
		{name: "GOROUTINE_STREAMS", def: "false", help: "keep every stream on a goroutine of its own instead of the poller (more memory; for comparisons)", parse: boolean(&c.GoroutineStreams)},
		{name: "VAPID_PRIVATE_KEY", help: "turns Web Push on: the raw 32-byte P-256 private key, base64url (`herald vapid` prints a new pair); the same on every instance", parse: vapidKey(&c.VAPIDKey)},
		{name: "VAPID_SUBJECT", help: "a `mailto:` or `https:` URL push services may contact about Herald's pushes; required with `VAPID_PRIVATE_KEY`", parse: vapidSubject(&c.VAPIDSubject)},
		{name: "PUSH_DELAY", def: "10s", help: "a notification still unread, unseen and written to no open stream this long after its delivery is pushed, 1s–1h", parse: duration(&c.PushDelay, time.Second, time.Hour)},
		{name: "PUSH_HOSTS", def: strings.Join(webpush.DefaultHosts, ","), help: "comma-separated push service hosts subscriptions may name (`*.example.com`: its subdomains only); Herald calls only these, over https", parse: pushHosts(&c.PushHosts)},
		{name: "dev", flagOnly: true, def: "false", help: "development mode: demo employees, demo page at `/`, printed commands with tokens; flag only, so no environment turns it on", parse: boolean(&c.Dev)},
		{name: "HERALD_URL", flag: "url", def: "http://localhost:3000", help: "`herald send`: the running Herald's base URL", parse: httpURL(&c.HeraldURL), tool: true, also: []string{"send"}},
		{name: "HERALD_TOKEN", flag: "token", defText: "a service token minted with `JWT_SECRET`", help: "`herald send`: the bearer token to publish with", parse: secret(&c.HeraldToken), tool: true, also: []string{"send"}},
	}
}

// flagName is the row's flag: --http-addr for HTTP_ADDR.
func (o option) flagName() string {
	if o.flag != "" {
		return o.flag
	}
	return strings.ToLower(strings.ReplaceAll(o.name, "_", "-"))
}

// readBy reports whether command reads the row.
func (o option) readBy(command string) bool {
	if command == "serve" {
		return !o.tool
	}
	for _, c := range o.also {
		if c == command {
			return true
		}
	}
	return false
}

// label names the row as the user set it, for error messages.
func (o option) label(b *binding) string {
	switch {
	case o.flagOnly || b.source == sourceFlag:
		return "--" + o.flagName()
	case b.source == sourceEnv:
		return o.name
	}
	return o.name + " (default)"
}

const (
	sourceDefault = iota
	sourceEnv
	sourceFlag
)

// binding is one row's text as it was given, before parsing. It is the
// flag.Value of the row's flag, so a flag overrides the environment.
type binding struct {
	opt    option
	text   string
	source int
}

func (b *binding) String() string {
	if b == nil {
		return ""
	}
	return b.text
}

func (b *binding) Set(s string) error { b.text, b.source = s, sourceFlag; return nil }

// IsBoolFlag lets a boolean row's flag stand alone (--dev).
func (b *binding) IsBoolFlag() bool { return b.opt.parse.kind == "bool" }

// bindOptions defines a flag on fs for every row command reads, with the
// environment's value (or the default) as its starting text.
func bindOptions(fs *flag.FlagSet, getenv func(string) string, c *config, command string) []*binding {
	var out []*binding
	for _, o := range c.options() {
		if !o.readBy(command) {
			continue
		}
		b := &binding{opt: o, text: o.def}
		if v := getenv(o.name); !o.flagOnly && v != "" {
			b.text, b.source = v, sourceEnv
		}
		fs.Var(b, o.flagName(), o.help)
		out = append(out, b)
	}
	return out
}

// applyOptions parses every bound row into c (the flags have been parsed)
// and returns one problem per bad value, each naming what to fix.
func applyOptions(c *config, bound []*binding) []string {
	var problems []string
	c.explicit = map[string]bool{}
	for _, b := range bound {
		text := b.text
		if !b.opt.parse.raw {
			text = strings.TrimSpace(text)
		}
		if err := b.opt.parse.set(text); err != nil {
			problems = append(problems, b.opt.label(b)+": "+err.Error())
		}
		if b.source != sourceDefault {
			c.explicit[b.opt.name] = true
		}
	}
	return problems
}

// loadConfig reads `herald serve`'s configuration from the environment and
// args (parsed by parse), and validates it. Every problem is reported at
// once, each naming the variable (or flag) to fix. fs must be fresh; its
// flags are defined here.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string, parse func(*flag.FlagSet, []string) error) (config, error) {
	var cfg config
	bound := bindOptions(fs, getenv, &cfg, "serve")
	if err := parse(fs, args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s (settings are flags, e.g. --http-addr :3000)", strings.Join(fs.Args(), " "))
	}
	problems := applyOptions(&cfg, bound)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return config{}, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	if cfg.Dev && !cfg.explicit["HTTP_ADDR"] {
		_, port, _ := splitHostPort(cfg.HTTPAddr)
		cfg.HTTPAddr = "127.0.0.1:" + port
	}
	return cfg, nil
}

// validate checks what no single row can: settings that need each other.
func (c *config) validate() []string {
	var problems []string
	if c.AzureIssuer != "" && len(c.AzureAudience) == 0 {
		problems = append(problems, "AZURE_AUDIENCE: required with AZURE_ISSUER_BASE_URL: the App ID URI and/or client ID tokens are issued for")
	}
	if c.AzureIssuer == "" && (c.AzureJWKSURI != "" || len(c.AzureAudience) > 0) {
		problems = append(problems, "AZURE_ISSUER_BASE_URL: required when AZURE_JWKS_URI or AZURE_AUDIENCE is set")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		problems = append(problems, "TLS_CERT_FILE and TLS_KEY_FILE: set both (HTTPS with HTTP/2) or neither (plain HTTP, e.g. behind a proxy)")
	}
	if c.H2C && c.TLSCertFile != "" {
		problems = append(problems, "H2C: cleartext HTTP/2 is for a plain listener behind a proxy; with TLS_CERT_FILE Herald already serves HTTP/2 over TLS: unset one")
	}
	if c.VAPIDKey != nil && c.VAPIDSubject == "" {
		problems = append(problems, "VAPID_SUBJECT: required with VAPID_PRIVATE_KEY: a mailto: or https: URL push services may contact (e.g. mailto:ops@example.com)")
	}
	if !c.Dev && c.JWTSecret == "" && c.AzureIssuer == "" {
		problems = append(problems, "no authentication configured: set JWT_SECRET (HS256 tokens), or AZURE_ISSUER_BASE_URL and AZURE_AUDIENCE (Azure AD tokens), or run with --dev")
	}
	return problems
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
