package postgres

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestOptionsIgnoreNonPositive: each option takes a positive value (or a
// logger) and leaves the default in place for zero, a negative value or
// nil, as documented.
func TestOptionsIgnoreNonPositive(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	defaults := func() options {
		return options{log: logger, maxConns: 7, pingInterval: 7 * time.Second, pingTimeout: 7 * time.Second, callTimeout: 7 * time.Second}
	}
	other := slog.New(slog.NewTextHandler(&strings.Builder{}, nil))
	tests := []struct {
		name string
		opt  Option
		want func(o *options)
	}{
		{"call timeout 0", WithCallTimeout(0), nil},
		{"call timeout -1s", WithCallTimeout(-time.Second), nil},
		{"call timeout 1ns", WithCallTimeout(1), func(o *options) { o.callTimeout = 1 }},
		{"call timeout 3s", WithCallTimeout(3 * time.Second), func(o *options) { o.callTimeout = 3 * time.Second }},
		{"max conns 0", WithMaxConns(0), nil},
		{"max conns -1", WithMaxConns(-1), nil},
		{"max conns 1", WithMaxConns(1), func(o *options) { o.maxConns = 1 }},
		{"max conns 40", WithMaxConns(40), func(o *options) { o.maxConns = 40 }},
		{"ping 0, 0", WithListenerPing(0, 0), nil},
		{"ping -1s, -1s", WithListenerPing(-time.Second, -time.Second), nil},
		{"ping 1ns, 0", WithListenerPing(1, 0), func(o *options) { o.pingInterval = 1 }},
		{"ping 0, 1ns", WithListenerPing(0, 1), func(o *options) { o.pingTimeout = 1 }},
		{"ping 2s, 3s", WithListenerPing(2*time.Second, 3*time.Second), func(o *options) {
			o.pingInterval = 2 * time.Second
			o.pingTimeout = 3 * time.Second
		}},
		{"logger nil", WithLogger(nil), nil},
		{"logger", WithLogger(other), func(o *options) { o.log = other }},
		{"retry start", WithRetryStart(), func(o *options) { o.retryStart = true }},
	}
	for _, tt := range tests {
		got, want := defaults(), defaults()
		tt.opt(&got)
		if tt.want != nil {
			tt.want(&want)
		}
		if got != want {
			t.Errorf("%s: options %+v, want %+v", tt.name, got, want)
		}
	}
}

// TestRedact: a URL's password never reaches a message, and a URL that
// does not parse is not echoed at all.
func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://herald:s3cret@db.example:5432/herald?sslmode=disable", "postgres://herald:xxxxx@db.example:5432/herald?sslmode=disable"},
		{"postgres://herald@db.example/herald", "postgres://herald@db.example/herald"},
		{"postgres://herald:s3cret@db.example:bad port/x", "(an unparsable URL)"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := connString("mysql://herald:s3cret@db.example/herald")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "herald:xxxxx@db.example") {
		t.Errorf("connString of a mysql URL with a password: %v; want an error naming the URL without its password", err)
	}
}
