// Package pgtest gives tests a fresh PostgreSQL database on the server that
// TEST_DATABASE_URL names, dropped when the test ends.
//
// Without TEST_DATABASE_URL the tests that need PostgreSQL skip, saying how
// to run them, except under CI=true, where they fail: CI must not pass
// without having run them.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

// EnvVar names the server the tests use.
const EnvVar = "TEST_DATABASE_URL"

// Example is a TEST_DATABASE_URL for the local server .ci/run starts.
const Example = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns TEST_DATABASE_URL, or skips the test (fails it under
// CI=true) when it is not set.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set, and CI=true requires the PostgreSQL tests to run (e.g. %s='%s')", EnvVar, EnvVar, Example)
		}
		tb.Skipf("PostgreSQL tests skipped: run them with %s='%s' make test", EnvVar, Example)
	}
	return u
}

// NewDatabase creates an empty database on the TEST_DATABASE_URL server,
// drops it (closing its connections) when the test ends, and returns its
// URL. A server that cannot be reached fails the test.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	server := ServerURL(tb)
	admin, err := sql.Open("postgres", server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvVar, err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "herald_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		tb.Fatalf("create a test database on %s (%s): %v", redacted(server), EnvVar, err)
	}
	tb.Cleanup(func() { drop(tb, server, name) })
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String()
}

func drop(tb testing.TB, server, name string) {
	admin, err := sql.Open("postgres", server)
	if err != nil {
		tb.Errorf("drop test database %s: %v", name, err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		tb.Errorf("drop test database %s: %v", name, err)
	}
}

func redacted(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return strings.Repeat("*", 8)
}
