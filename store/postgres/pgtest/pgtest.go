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
	"fmt"
	"net/url"
	"os"
	"strconv"
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
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s%d_%s", prefix, time.Now().Unix(), hex.EncodeToString(b[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dropStale(ctx, tb, admin)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		tb.Fatalf("create a test database on %s (%s): %v", redacted(server), EnvVar, err)
	}
	tb.Cleanup(func() { drop(tb, server, name) })
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String()
}

// prefix starts the name of every test database, followed by its creation
// time (Unix seconds), so dropStale can tell the ones a crashed run left.
const prefix = "herald_test_"

// staleAfter is the age beyond which a test database is left over from a
// run that could not clean up (a panic, a kill): no test runs this long.
const staleAfter = 6 * time.Hour

// dropStale drops test databases older than staleAfter.
func dropStale(ctx context.Context, tb testing.TB, admin *sql.DB) {
	rows, err := admin.QueryContext(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, prefix)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) != nil {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(name, prefix), "_")
		if secs, err := strconv.ParseInt(ts, 10, 64); err == nil && time.Since(time.Unix(secs, 0)) > staleAfter {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err == nil {
			tb.Logf("dropped %s, left over by an earlier test run", name)
		}
	}
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
