package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/sqlite"
)

// openStore opens (creating and migrating) the store DATABASE_URL names. Its
// errors name DATABASE_URL and the file or server, and say what to check.
// serving takes SQLite's instance lock: only herald serve does, so a second
// server on one file refuses to start while the CLI commands still work
// beside a running one.
func openStore(ctx context.Context, dsn string, log *slog.Logger, serving bool, pgOpts ...postgres.Option) (store.Store, error) {
	var (
		st  store.Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		var opts []sqlite.Option
		if serving {
			opts = append(opts, sqlite.InstanceLock())
		}
		st, err = sqlite.Open(ctx, dsn, opts...)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		opts := pgOpts
		if log != nil {
			opts = append(opts, postgres.WithLogger(log))
		}
		st, err = postgres.Open(ctx, dsn, opts...)
	default:
		return nil, fmt.Errorf("DATABASE_URL: unsupported scheme: use sqlite:PATH or postgres://")
	}
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: cannot open %s: %w%s", describeDatabase(dsn), err, databaseHint(dsn, err))
	}
	return st, nil
}

// describeDatabase names the file or the server of dsn, never a password.
func describeDatabase(dsn string) string {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		path = strings.TrimPrefix(path, "//")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "the SQLite file " + path
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "the PostgreSQL database (DATABASE_URL does not parse)"
	}
	host := u.Host
	if host == "" {
		host = u.Query().Get("host")
	}
	desc := "PostgreSQL at " + host
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		desc += ", database " + db
	}
	if u.User != nil && u.User.Username() != "" {
		desc += ", user " + u.User.Username()
	}
	return desc
}

// databaseHint adds what to check for the failures a first run meets.
func databaseHint(dsn string, err error) string {
	msg := err.Error()
	sqliteFile := strings.HasPrefix(dsn, "sqlite:")
	switch {
	case sqliteFile && strings.Contains(msg, "unable to open database file"):
		dir := filepath.Dir(strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//"))
		return fmt.Sprintf(" (check that the directory %s exists and this user may write there)", dir)
	case sqliteFile && (strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only")):
		return " (this user may not write the file or its directory)"
	case sqliteFile && strings.Contains(msg, "not a database"):
		return " (the file is not a SQLite database: point DATABASE_URL at another path)"
	case sqliteFile:
		return ""
	case strings.Contains(msg, "connection refused"):
		return " (is PostgreSQL running there, and listening on TCP?)"
	case strings.Contains(msg, "no such host"):
		return " (check the host name in DATABASE_URL)"
	case strings.Contains(msg, "3D000"), strings.Contains(msg, "does not exist") && strings.Contains(msg, "database"):
		u, _ := url.Parse(dsn)
		return fmt.Sprintf(" (create it first, e.g. createdb -h %s %s)", u.Hostname(), strings.TrimPrefix(u.Path, "/"))
	case strings.Contains(msg, "28P01"), strings.Contains(msg, "password authentication failed"), strings.Contains(msg, "28000"):
		return " (check the user and password in DATABASE_URL)"
	case strings.Contains(msg, "SSL is not enabled"):
		return " (the server has no TLS: add ?sslmode=disable to DATABASE_URL for a local server)"
	case strings.Contains(msg, "timeout"), strings.Contains(msg, "deadline exceeded"):
		return " (the server did not answer: check the host, port and firewall)"
	}
	return ""
}

// centerJobs is how the notification center's background jobs run on st.
// The retention sweep keeps SQLite's defaults there (chunks of about 3 ms,
// at most 500 rows of each kind): a chunk holds the one writer, and
// publishes wait behind it. PostgreSQL's deletes hold no publish back, so
// its chunks aim at 20 ms and up to 2,000 rows of each kind, which spends
// less of the database's time on each chunk's fixed costs; the rest after
// a chunk is still three times its time, as on SQLite.
func centerJobs(st store.Store, retention time.Duration) store.CenterJobs {
	j := store.CenterJobs{Retention: retention}
	if _, ok := st.(*postgres.DB); ok {
		j.SweepChunkTime, j.SweepMaxRows = 20*time.Millisecond, 2000
	}
	return j
}
