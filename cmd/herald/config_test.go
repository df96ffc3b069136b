package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(nil, env("JWT_SECRET", "s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":3000" || cfg.DatabaseURL != "sqlite:herald.db" || cfg.TokenCookie != "token" ||
		cfg.Heartbeat != 15*time.Second || strings.Join(cfg.PublisherRoles, ",") != "Notifications.Publish,service,admin" ||
		strings.Join(cfg.FrontendURLs, ",") != "http://localhost:5173" || cfg.LogFormat != "text" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestConfigFlagsOverrideEnv(t *testing.T) {
	cfg, err := loadConfig([]string{"--http-addr", "127.0.0.1:9", "--heartbeat-interval", "2s"},
		env("JWT_SECRET", "s", "HTTP_ADDR", ":1", "HEARTBEAT_INTERVAL", "30s", "FRONTEND_URL", "https://a.example, https://b.example/"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:9" || cfg.Heartbeat != 2*time.Second || strings.Join(cfg.FrontendURLs, " ") != "https://a.example https://b.example" {
		t.Fatalf("cfg = %+v", cfg)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no auth", nil, nil, "JWT_SECRET"},
		{"bad addr", []string{"JWT_SECRET", "s", "HTTP_ADDR", "3000"}, nil, "HTTP_ADDR"},
		{"bad database", []string{"JWT_SECRET", "s", "DATABASE_URL", "mysql://x"}, nil, "DATABASE_URL"},
		{"empty sqlite path", []string{"JWT_SECRET", "s", "DATABASE_URL", "sqlite:"}, nil, "DATABASE_URL"},
		{"bad origin", []string{"JWT_SECRET", "s", "FRONTEND_URL", "localhost:5173"}, nil, "FRONTEND_URL"},
		{"origin with path", []string{"JWT_SECRET", "s", "FRONTEND_URL", "https://a.example/app"}, nil, "FRONTEND_URL"},
		{"azure without audience", []string{"AZURE_ISSUER_BASE_URL", "https://login.microsoftonline.com/t/v2.0"}, nil, "AZURE_AUDIENCE"},
		{"audience without issuer", []string{"JWT_SECRET", "s", "AZURE_AUDIENCE", "api://x"}, nil, "AZURE_ISSUER_BASE_URL"},
		{"bad heartbeat", []string{"JWT_SECRET", "s", "HEARTBEAT_INTERVAL", "often"}, nil, "HEARTBEAT_INTERVAL"},
		{"tiny heartbeat", []string{"JWT_SECRET", "s", "HEARTBEAT_INTERVAL", "10ms"}, nil, "HEARTBEAT_INTERVAL"},
		{"bad level", []string{"JWT_SECRET", "s", "LOG_LEVEL", "loud"}, nil, "LOG_LEVEL"},
		{"bad format", []string{"JWT_SECRET", "s", "LOG_FORMAT", "xml"}, nil, "LOG_FORMAT"},
		{"bad cookie", []string{"JWT_SECRET", "s", "TOKEN_COOKIE", "a b"}, nil, "TOKEN_COOKIE"},
		{"stray argument", []string{"JWT_SECRET", "s"}, []string{"extra"}, "unexpected"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.args, env(tt.env...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
	if _, err := loadConfig([]string{"--dev"}, env(), io.Discard); err != nil {
		t.Errorf("--dev without auth: %v", err)
	}
}

// TestConfigHardening: issue 14's variables, their defaults and checks.
func TestConfigHardening(t *testing.T) {
	cfg, err := loadConfig(nil, env("JWT_SECRET", "s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.DirectoryRoles, ",") != "Directory.Write,admin" || cfg.TrustEmailClaim ||
		cfg.PublishRate != 500 || cfg.ConnectRate != 0 || cfg.StateRate != 20 || len(cfg.TrustedProxies) != 0 {
		t.Fatalf("defaults = %+v", cfg.hardening)
	}
	cfg, err = loadConfig([]string{"--state-rate", "0"}, env("JWT_SECRET", "s",
		"DIRECTORY_ROLES", "HR.Write", "AZURE_TRUST_EMAIL_CLAIM", "1", "PUBLISH_RATE", "2.5", "CONNECT_RATE", "10",
		"TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,fd00::/8"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var proxies []string
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if strings.Join(cfg.DirectoryRoles, ",") != "HR.Write" || !cfg.TrustEmailClaim || cfg.PublishRate != 2.5 ||
		cfg.ConnectRate != 10 || cfg.StateRate != 0 || strings.Join(proxies, ",") != "10.0.0.0/8,192.168.1.7/32,fd00::/8" {
		t.Fatalf("cfg = %+v", cfg.hardening)
	}
	for _, tt := range []struct{ name, env, value, want string }{
		{"email claim not a bool", "AZURE_TRUST_EMAIL_CLAIM", "yes please", "AZURE_TRUST_EMAIL_CLAIM"},
		{"negative rate", "PUBLISH_RATE", "-1", "PUBLISH_RATE"},
		{"rate not a number", "CONNECT_RATE", "fast", "CONNECT_RATE"},
		{"rate with a unit", "STATE_RATE", "20/s", "STATE_RATE"},
		{"proxy not a CIDR", "TRUSTED_PROXIES", "proxy.internal", "TRUSTED_PROXIES"},
		// CORS would allow http://evil.example.com with credentials while the
		// WebSocket check compared literally (issue 14, row 14).
		{"wildcard origin", "FRONTEND_URL", "http://*.example.com", "wildcard origins are not supported"},
		{"wildcard origin among others", "FRONTEND_URL", "https://app.example.com,https://*", "wildcard"},
		{"star", "FRONTEND_URL", "*", "FRONTEND_URL"},
	} {
		_, err := loadConfig(nil, env("JWT_SECRET", "s", tt.env, tt.value), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}
