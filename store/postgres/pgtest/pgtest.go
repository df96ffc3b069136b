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
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
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
	return newDatabase(tb, ServerURL(tb), "")
}

// newDatabase creates a test database with the given CREATE DATABASE
// options and drops it when the test ends.
func newDatabase(tb testing.TB, server, options string) string {
	tb.Helper()
	admin, err := sql.Open("postgres", server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvVar, err)
	}
	defer admin.Close()
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dropStale(ctx, tb, admin)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+options); err != nil {
		tb.Fatalf("create a test database on %s (%s): %v", redacted(server), EnvVar, err)
	}
	tb.Cleanup(func() { drop(tb, server, name) })
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String()
}

// NewPreparedDatabase is NewDatabase for tests that want a database set
// up by prepare (e.g. migrated): prepare runs once per test process and
// key, on a template database, and each test gets its own copy of it
// (CREATE DATABASE … TEMPLATE), which costs a file copy instead of a
// migration per test. prepare must close every connection it opens to the
// template: PostgreSQL copies a database only while nobody is connected to
// it. Call DropTemplates when the test process ends (TestMain); a template
// left by a crashed run is dropped as stale, like a test database.
func NewPreparedDatabase(tb testing.TB, key string, prepare func(ctx context.Context, url string) error) string {
	tb.Helper()
	server := ServerURL(tb)
	tmpl := templateFor(server, key, prepare)
	if tmpl.err != nil {
		tb.Fatalf("prepare the template database %q: %v", key, tmpl.err)
	}
	return newDatabase(tb, server, " TEMPLATE "+pq.QuoteIdentifier(tmpl.name))
}

// templates holds the template databases of this test process, by key.
var templates struct {
	sync.Mutex
	byKey map[string]*templateDB
}

type templateDB struct {
	once sync.Once
	name string
	err  error
}

func templateFor(server, key string, prepare func(ctx context.Context, url string) error) *templateDB {
	templates.Lock()
	if templates.byKey == nil {
		templates.byKey = map[string]*templateDB{}
	}
	t, ok := templates.byKey[key]
	if !ok {
		t = &templateDB{}
		templates.byKey[key] = t
	}
	templates.Unlock()
	t.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		admin, err := sql.Open("postgres", server)
		if err != nil {
			t.err = err
			return
		}
		defer admin.Close()
		name := newName()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
			t.err = fmt.Errorf("create %s: %w", name, err)
			return
		}
		t.name = name
		u, _ := url.Parse(server)
		u.Path = "/" + name
		t.err = prepare(ctx, u.String())
	})
	return t
}

// DropTemplates drops the template databases NewPreparedDatabase created.
func DropTemplates() error {
	templates.Lock()
	defer templates.Unlock()
	server := os.Getenv(EnvVar)
	var errs []error
	for key, t := range templates.byKey {
		if t.name == "" {
			continue
		}
		if err := dropDatabase(server, t.name); err != nil {
			errs = append(errs, fmt.Errorf("drop template %q: %w", key, err))
		}
	}
	templates.byKey = nil
	return errors.Join(errs...)
}

func newName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d_%s", prefix, time.Now().Unix(), hex.EncodeToString(b[:]))
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
	if err := dropDatabase(server, name); err != nil {
		tb.Errorf("drop test database %s: %v", name, err)
	}
}

func dropDatabase(server, name string) error {
	admin, err := sql.Open("postgres", server)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	return err
}

func redacted(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return strings.Repeat("*", 8)
}
