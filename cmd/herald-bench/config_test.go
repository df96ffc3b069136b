package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopbackURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:3000", true},
		{"http://127.8.9.10:3000", true},
		{"http://localhost:3000", true},
		{"http://[::1]:3000", true},
		{"postgres://u:p@127.0.0.1:5432/herald?sslmode=disable", true},
		{"postgres:///herald?host=/var/run/postgresql", true},
		{"http://10.0.0.5:3000", false},
		{"http://herald.example.com", false},
		{"http://0.0.0.0:3000", false},
		{"https://127.0.0.1:3000", false},
		{"postgres://db.example.com/herald", false},
		{"http://", false},
	}
	for _, tt := range tests {
		if err := checkLoopbackURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("checkLoopbackURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestParseConfigBounds(t *testing.T) {
	env := func(string) string { return "" }
	tests := []struct {
		name string
		args string
		want string // a fragment of the error; "" for success
	}{
		{"spawn defaults", "--spawn", ""},
		{"url with secret", "--url http://127.0.0.1:3000 --jwt-secret s", ""},
		{"no target", "", "give --url"},
		{"both targets", "--spawn --url http://127.0.0.1:1", "exclude each other"},
		{"remote url", "--url http://192.168.1.2:3000 --jwt-secret s", "not on loopback"},
		{"too many streams", "--spawn --streams 200001", "--streams"},
		{"too long", "--spawn --duration 11m", "--duration"},
		{"too few employees", "--spawn --streams 100 --employees 9", "--employees"},
		{"sqlite twice", "--spawn --instances 2", "needs --database-url postgres"},
		{"remote source", "--spawn --source-addrs 10.0.0.1", "not a loopback"},
		{"remote database", "--spawn --database-url postgres://db.example.com/h", "--database-url"},
		{"bad mode", "--spawn --mode multicast", "--mode"},
		{"url needs secret", "--url http://127.0.0.1:3000", "--jwt-secret"},
		{"inbox and center calls", "--spawn --inbox 100000 --center-calls 300", ""},
		{"inbox too large", "--spawn --inbox 10000001", "--inbox"},
		{"too many center calls", "--spawn --center-calls 100001", "--center-calls"},
		{"inbox without spawn", "--url http://127.0.0.1:3000 --jwt-secret s --inbox 10", "--inbox needs --spawn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(strings.Fields(tt.args), env, io.Discard)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("parseConfig(%s): %v", tt.args, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("parseConfig(%s) = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig([]string{"--spawn", "--streams", "25000", "--employees", "5000", "--mode", "role", "--rate", "5000"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.SourceAddrs, ",") != "127.0.0.2,127.0.0.3,127.0.0.4" {
		t.Errorf("source addrs %v, want three from 127.0.0.2 (one per 10,000 streams)", c.SourceAddrs)
	}
	if c.Roles != 10 || c.Publishers != 50 || c.Duration != 10*time.Second {
		t.Errorf("roles %d publishers %d duration %v, want 10 50 10s", c.Roles, c.Publishers, c.Duration)
	}
}
