package main

import (
	"flag"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite README.md's configuration table from the table in config.go")

func getenvOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func load(args []string, kv ...string) (config, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return loadConfig(fs, args, getenvOf(kv...), func(fs *flag.FlagSet, args []string) error { return fs.Parse(args) })
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := load(nil, "JWT_SECRET", "s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":3000" || cfg.DatabaseURL != "sqlite:herald.db" || cfg.TokenCookie != "token" ||
		cfg.Heartbeat != 15*time.Second || strings.Join(cfg.PublisherRoles, ",") != "Notifications.Publish,service,admin" ||
		strings.Join(cfg.FrontendURLs, ",") != "http://localhost:5173" || cfg.LogFormat != "text" ||
		cfg.H2C || cfg.GoroutineStreams || cfg.Dev || cfg.DebugAddr != "" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestConfigFlagsOverrideEnv(t *testing.T) {
	cfg, err := load([]string{"--http-addr", "127.0.0.1:9", "--heartbeat-interval", "2s", "--goroutine-streams"},
		"JWT_SECRET", "s", "HTTP_ADDR", ":1", "HEARTBEAT_INTERVAL", "30s", "GOROUTINE_STREAMS", "false",
		"FRONTEND_URL", "https://a.example, https://B.example/")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:9" || cfg.Heartbeat != 2*time.Second || !cfg.GoroutineStreams ||
		strings.Join(cfg.FrontendURLs, " ") != "https://a.example https://b.example" {
		t.Fatalf("cfg = %+v", cfg)
	}
}

func TestConfigBooleans(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", "True", "yes", "on", "y", "t"} {
		cfg, err := load(nil, "JWT_SECRET", "s", "GOROUTINE_STREAMS", v, "H2C", v)
		if err != nil || !cfg.GoroutineStreams || !cfg.H2C {
			t.Errorf("GOROUTINE_STREAMS=%s: got %v, %v; want true", v, cfg.GoroutineStreams, err)
		}
	}
	for _, v := range []string{"0", "false", "no", "off", "N", "f"} {
		cfg, err := load(nil, "JWT_SECRET", "s", "GOROUTINE_STREAMS", v)
		if err != nil || cfg.GoroutineStreams {
			t.Errorf("GOROUTINE_STREAMS=%s: got %v, %v; want false", v, cfg.GoroutineStreams, err)
		}
	}
	for _, v := range []string{"maybe", "2", "enabled"} {
		if _, err := load(nil, "JWT_SECRET", "s", "GOROUTINE_STREAMS", v); err == nil || !strings.Contains(err.Error(), "GOROUTINE_STREAMS") {
			t.Errorf("GOROUTINE_STREAMS=%s: error %v, want one naming the variable", v, err)
		}
	}
	if _, err := load([]string{"--dev=perhaps"}); err == nil || !strings.Contains(err.Error(), "--dev") {
		t.Errorf("--dev=perhaps: error %v, want one naming --dev", err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cert := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no auth", nil, nil, "JWT_SECRET"},
		{"bad addr", []string{"JWT_SECRET", "s", "HTTP_ADDR", "3000"}, nil, "HTTP_ADDR"},
		{"bad port", []string{"JWT_SECRET", "s", "HTTP_ADDR", ":99999"}, nil, "HTTP_ADDR"},
		{"bad addr flag", []string{"JWT_SECRET", "s"}, []string{"--http-addr", "nope"}, "--http-addr"},
		{"bad database", []string{"JWT_SECRET", "s", "DATABASE_URL", "mysql://x"}, nil, "DATABASE_URL"},
		{"empty sqlite path", []string{"JWT_SECRET", "s", "DATABASE_URL", "sqlite:"}, nil, "DATABASE_URL"},
		{"postgres without host", []string{"JWT_SECRET", "s", "DATABASE_URL", "postgres:///x"}, nil, "DATABASE_URL"},
		{"bad origin", []string{"JWT_SECRET", "s", "FRONTEND_URL", "localhost:5173"}, nil, "FRONTEND_URL"},
		{"origin with path", []string{"JWT_SECRET", "s", "FRONTEND_URL", "https://a.example/app"}, nil, "FRONTEND_URL"},
		{"wildcard origin", []string{"JWT_SECRET", "s", "FRONTEND_URL", "http://*.example.com"}, nil, "FRONTEND_URL"},
		{"azure without audience", []string{"AZURE_ISSUER_BASE_URL", "https://login.microsoftonline.com/t/v2.0"}, nil, "AZURE_AUDIENCE"},
		{"audience without issuer", []string{"JWT_SECRET", "s", "AZURE_AUDIENCE", "api://x"}, nil, "AZURE_ISSUER_BASE_URL"},
		{"bad issuer", []string{"AZURE_ISSUER_BASE_URL", "login.microsoftonline.com", "AZURE_AUDIENCE", "x"}, nil, "AZURE_ISSUER_BASE_URL"},
		{"bad heartbeat", []string{"JWT_SECRET", "s", "HEARTBEAT_INTERVAL", "often"}, nil, "HEARTBEAT_INTERVAL"},
		{"tiny heartbeat", []string{"JWT_SECRET", "s", "HEARTBEAT_INTERVAL", "10ms"}, nil, "HEARTBEAT_INTERVAL"},
		{"bad level", []string{"JWT_SECRET", "s", "LOG_LEVEL", "loud"}, nil, "LOG_LEVEL"},
		{"bad format", []string{"JWT_SECRET", "s", "LOG_FORMAT", "xml"}, nil, "LOG_FORMAT"},
		{"bad cookie", []string{"JWT_SECRET", "s", "TOKEN_COOKIE", "a b"}, nil, "TOKEN_COOKIE"},
		{"missing cert file", []string{"JWT_SECRET", "s", "TLS_CERT_FILE", "/nonexistent/cert.pem", "TLS_KEY_FILE", cert}, nil, "TLS_CERT_FILE"},
		{"cert without key", []string{"JWT_SECRET", "s", "TLS_CERT_FILE", cert}, nil, "TLS_KEY_FILE"},
		{"h2c with tls", []string{"JWT_SECRET", "s", "TLS_CERT_FILE", cert, "TLS_KEY_FILE", cert, "H2C", "1"}, nil, "H2C"},
		{"bad debug addr", []string{"JWT_SECRET", "s", "DEBUG_ADDR", "6060"}, nil, "DEBUG_ADDR"},
		{"stray argument", []string{"JWT_SECRET", "s"}, []string{"extra"}, "unexpected"},
		{"vapid key not base64url", []string{"JWT_SECRET", "s", "VAPID_PRIVATE_KEY", "***", "VAPID_SUBJECT", "mailto:a@b.example"}, nil, "VAPID_PRIVATE_KEY"},
		{"vapid key of 16 bytes", []string{"JWT_SECRET", "s", "VAPID_PRIVATE_KEY", "AAAAAAAAAAAAAAAAAAAAAA", "VAPID_SUBJECT", "mailto:a@b.example"}, nil, "VAPID_PRIVATE_KEY"},
		{"vapid key without subject", []string{"JWT_SECRET", "s", "VAPID_PRIVATE_KEY", "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"}, nil, "VAPID_SUBJECT"},
		{"vapid subject not a URL", []string{"JWT_SECRET", "s", "VAPID_SUBJECT", "ops@corp.example"}, nil, "VAPID_SUBJECT"},
		{"push delay too short", []string{"JWT_SECRET", "s", "PUSH_DELAY", "10ms"}, nil, "PUSH_DELAY"},
		{"push host with scheme", []string{"JWT_SECRET", "s", "PUSH_HOSTS", "https://fcm.googleapis.com"}, nil, "PUSH_HOSTS"},
		{"push host with port", []string{"JWT_SECRET", "s", "PUSH_HOSTS", "push.example.com:443"}, nil, "PUSH_HOSTS"},
		{"push host every .com", []string{"JWT_SECRET", "s", "PUSH_HOSTS", "*.com"}, nil, "PUSH_HOSTS"},
	}
	for _, tt := range tests {
		_, err := load(tt.args, tt.env...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
	cfg, err := load(nil, "JWT_SECRET", "s", "VAPID_PRIVATE_KEY", "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw", "VAPID_SUBJECT", "mailto:ops@corp.example", "PUSH_HOSTS", "127.0.0.1, *.push.example.net")
	if err != nil || cfg.VAPIDKey == nil || cfg.PushDelay != 10*time.Second || len(cfg.PushHosts) != 2 {
		t.Errorf("Web Push settings: %+v, %v", cfg, err)
	}
	if _, err := load([]string{"--dev"}); err != nil {
		t.Errorf("--dev without auth: %v", err)
	}
}

func TestConfigNeverEchoesSecrets(t *testing.T) {
	_, err := load(nil, "JWT_SECRET", "hunter2-hunter2", "HTTP_ADDR", "bad")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want an error without the secret", err)
	}
}

func TestDevListensOnLoopbackUnlessTold(t *testing.T) {
	cfg, err := load([]string{"--dev"})
	if err != nil || cfg.HTTPAddr != "127.0.0.1:3000" {
		t.Fatalf("--dev: HTTP_ADDR %q (%v), want 127.0.0.1:3000", cfg.HTTPAddr, err)
	}
	if cfg, _ := load([]string{"--dev"}, "HTTP_ADDR", ":3000"); cfg.HTTPAddr != ":3000" {
		t.Fatalf("--dev with HTTP_ADDR=:3000: %q", cfg.HTTPAddr)
	}
	if cfg, _ := load([]string{"--dev", "--http-addr", "0.0.0.0:4000"}); cfg.HTTPAddr != "0.0.0.0:4000" {
		t.Fatalf("--dev --http-addr 0.0.0.0:4000: %q", cfg.HTTPAddr)
	}
	// --dev is a flag only: no variable turns it on.
	if cfg, err := load(nil, "JWT_SECRET", "s", "DEV", "true", "dev", "true"); err != nil || cfg.Dev {
		t.Fatalf("dev from the environment: %v %v", cfg.Dev, err)
	}
}

// TestParsersForLimits covers the parsers that rate and limit settings use.
func TestParsersForLimits(t *testing.T) {
	var (
		n   int
		f   float64
		pfx []netip.Prefix
	)
	tests := []struct {
		p    parser
		in   string
		good bool
	}{
		{count(&n, 1, 100), "50", true}, {count(&n, 1, 100), "100_000", false}, {count(&n, 1, 100), "x", false},
		{rate(&f), "0", true}, {rate(&f), "2.5", true}, {rate(&f), "-1", false}, {rate(&f), "NaN", false}, {rate(&f), "fast", false},
		{prefixes(&pfx), "10.0.0.0/8, 192.168.1.7, ::1", true}, {prefixes(&pfx), "10.0.0.0/33", false}, {prefixes(&pfx), "proxy", false},
	}
	for _, tt := range tests {
		if err := tt.p.set(tt.in); (err == nil) != tt.good {
			t.Errorf("%s %q: error %v, want good=%v", tt.p.kind, tt.in, err, tt.good)
		}
	}
	if len(pfx) != 3 || pfx[1].String() != "192.168.1.7/32" {
		t.Errorf("prefixes = %v", pfx)
	}
}

// TestREADMEConfigTable keeps README.md's table identical to the table in
// config.go. go test ./cmd/herald -run TestREADMEConfigTable -update
// rewrites it.
func TestREADMEConfigTable(t *testing.T) {
	const begin, end = "<!-- configuration table: generated from cmd/herald/config.go -->\n", "<!-- end of configuration table -->"
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q and %q around the configuration table", begin, end)
	}
	got, want := readme[i+len(begin):j], configMarkdown()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's configuration table differs from config.go's; run\n  go test ./cmd/herald -run TestREADMEConfigTable -update\nwant:\n%s\ngot:\n%s", want, got)
}

// TestNoVariableBypassesTheTable fails when code of this command reads the
// environment anywhere but through the table.
func TestNoVariableBypassesTheTable(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			fn, ok := n.(*ast.FuncDecl)
			if ok && (fn.Name.Name == "bindOptions" || fn.Name.Name == "main") {
				return false // the table's reader; main hands os.Getenv to run
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var callee string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				callee = f.Name
			case *ast.SelectorExpr:
				callee = f.Sel.Name
			}
			switch callee {
			case "getenv", "Getenv", "LookupEnv", "Environ":
				t.Errorf("%s: %s reads the environment outside the configuration table", fset.Position(call.Pos()), callee)
			}
			return true
		})
	}
}

func TestEveryOptionHasHelpAndAValidDefault(t *testing.T) {
	var c config
	seen := map[string]bool{}
	for _, o := range c.options() {
		if o.help == "" || o.parse.set == nil {
			t.Errorf("%s: needs help and a parser", o.name)
		}
		if seen[o.flagName()] {
			t.Errorf("%s: flag --%s defined twice", o.name, o.flagName())
		}
		seen[o.flagName()] = true
		if o.def != "" {
			if err := o.parse.set(o.def); err != nil {
				t.Errorf("%s: default %q does not parse: %v", o.name, o.def, err)
			}
		}
	}
}

// TestConfigLimitsAndIdentity: the identity and limit variables, their
// defaults and checks.
func TestConfigLimitsAndIdentity(t *testing.T) {
	cfg, err := load(nil, "JWT_SECRET", "s")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.DirectoryRoles, ",") != "Directory.Write,admin" || cfg.TrustEmailClaim ||
		cfg.PublishRate != 500 || cfg.ConnectRate != 0 || cfg.StateRate != 20 || len(cfg.TrustedProxies) != 0 ||
		cfg.MaxStreams != 100000 || cfg.MaxStreamAge != time.Hour || cfg.Retention != 90*24*time.Hour {
		t.Fatalf("defaults = %+v", cfg)
	}
	for value, want := range map[string]time.Duration{"0": 0, "30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour} {
		if cfg, err := load(nil, "JWT_SECRET", "s", "RETENTION", value); err != nil || cfg.Retention != want {
			t.Errorf("RETENTION=%s: %v, %v; want %v", value, cfg.Retention, err, want)
		}
	}
	cfg, err = load([]string{"--state-rate", "0"}, "JWT_SECRET", "s",
		"DIRECTORY_ROLES", "HR.Write", "AZURE_TRUST_EMAIL_CLAIM", "1", "PUBLISH_RATE", "2.5", "CONNECT_RATE", "10",
		"TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,fd00::/8", "MAX_STREAMS", "19500", "MAX_STREAM_AGE", "0")
	if err != nil {
		t.Fatal(err)
	}
	var proxies []string
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if strings.Join(cfg.DirectoryRoles, ",") != "HR.Write" || !cfg.TrustEmailClaim || cfg.PublishRate != 2.5 ||
		cfg.ConnectRate != 10 || cfg.StateRate != 0 || strings.Join(proxies, ",") != "10.0.0.0/8,192.168.1.7/32,fd00::/8" ||
		cfg.MaxStreams != 19500 || cfg.MaxStreamAge != 0 {
		t.Fatalf("cfg = %+v", cfg)
	}
	for _, tt := range []struct{ name, env, value, want string }{
		{"email claim not a bool", "AZURE_TRUST_EMAIL_CLAIM", "yes please", "AZURE_TRUST_EMAIL_CLAIM"},
		{"negative rate", "PUBLISH_RATE", "-1", "PUBLISH_RATE"},
		{"rate not a number", "CONNECT_RATE", "fast", "CONNECT_RATE"},
		{"rate with a unit", "STATE_RATE", "20/s", "STATE_RATE"},
		{"proxy not a CIDR", "TRUSTED_PROXIES", "proxy.internal", "TRUSTED_PROXIES"},
		{"no streams", "MAX_STREAMS", "0", "MAX_STREAMS"},
		{"age too short", "MAX_STREAM_AGE", "10s", "MAX_STREAM_AGE"},
		{"age not a duration", "MAX_STREAM_AGE", "soon", "MAX_STREAM_AGE"},
		{"retention too short", "RETENTION", "10m", "RETENTION"},
		{"retention in weeks", "RETENTION", "2w", "RETENTION"},
		{"retention zero days", "RETENTION", "0d", "RETENTION"},
		// CORS would allow http://evil.example.com with credentials while the
		// WebSocket check compared literally.
		{"wildcard origin", "FRONTEND_URL", "http://*.example.com", "FRONTEND_URL"},
		{"star", "FRONTEND_URL", "*", "FRONTEND_URL"},
	} {
		_, err := load(nil, "JWT_SECRET", "s", tt.env, tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}
