package postgres

import (
	"net/url"
	"testing"
)

func TestConnStringDefaults(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"postgres://u@h/db", map[string]string{"binary_parameters": "yes", "connect_timeout": "5", "jit": "off"}},
		{"postgres://u@h/db?jit=on&connect_timeout=2&sslmode=disable", map[string]string{"jit": "on", "connect_timeout": "2", "sslmode": "disable", "binary_parameters": "yes"}},
	}
	for _, tt := range tests {
		got, err := connString(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(got)
		for k, v := range tt.want {
			if u.Query().Get(k) != v {
				t.Errorf("connString(%q) = %q: %s=%q, want %q", tt.in, got, k, u.Query().Get(k), v)
			}
		}
	}
	if _, err := connString("mysql://x"); err == nil {
		t.Error("connString accepted a mysql URL")
	}
}
