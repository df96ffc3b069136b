package main

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq"  // PostgreSQL, for --old-rows
	_ "modernc.org/sqlite" // SQLite, for --old-rows
)

// --old-rows puts notifications that are older than the retention period
// into the database before Herald starts, so that a run measures
// publishing while the retention sweep deletes them. They are written
// straight into Herald's tables, in one transaction of a few statements
// (a generated series of rows, not a row per statement): a million take
// seconds, where publishing them would take many minutes. Each is an
// ordinary notification with one copy, read and seen, of type
// oldType, dealt round robin over the bench's employees and numbered after
// each employee's latest seq, as a publish would have numbered it.

// oldType and oldPublisher mark the rows --old-rows wrote, so that a run
// can count what is left of them and remove leftovers.
const (
	oldType      = "bench.old"
	oldPublisher = "herald-bench-old"
)

// openDatabase opens the database of a DATABASE_URL with the driver the
// bench links in.
func openDatabase(dsn string) (*sql.DB, string, error) {
	if isPostgres(dsn) {
		db, err := sql.Open("postgres", dsn)
		return db, "postgres", err
	}
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return nil, "", fmt.Errorf("%q is neither sqlite:PATH nor postgres://", dsn)
	}
	path = strings.TrimPrefix(path, "//")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)")
	if err == nil {
		db.SetMaxOpenConns(1)
	}
	return db, "sqlite", err
}

// seedOldRows stores n old notifications created at created, one copy
// each, read and seen, over the employees of e (who must exist).
func seedOldRows(ctx context.Context, dsn string, e employees, n int, created time.Time) error {
	return seedRows(ctx, dsn, e, rowSpec{n: n, created: created, typ: oldType, publisher: oldPublisher, read: true})
}

// rowSpec is what seedRows writes: n notifications of type typ from
// publisher, created at created, one copy each, read and seen (read) or
// neither.
type rowSpec struct {
	n              int
	created        time.Time
	typ, publisher string
	read           bool
	// asLived: leave the statistics as a long-lived Herald database has
	// them: on PostgreSQL the tables vacuumed and analyzed, as autovacuum
	// will have done by the time an inbox is that large (index-only scans
	// need the visibility map); on SQLite none, as Herald never runs
	// ANALYZE there (with statistics, SQLite prepares a statement again
	// for each new value bound to an indexed column).
	asLived bool
}

// seedRows stores the notifications of spec straight into Herald's
// tables, dealt round robin over the employees of e.
func seedRows(ctx context.Context, dsn string, e employees, spec rowSpec) error {
	db, dialect, err := openDatabase(dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	n, created := spec.n, spec.created
	if dialect == "postgres" && spec.typ == oldType {
		// A run without retention leaves its rows; they go first, so that
		// every run starts from the same database.
		if _, err := deleteOldRows(ctx, db); err != nil {
			return err
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("old rows: %w", err)
	}
	defer tx.Rollback()
	// The numbers are formatted into the statements (they are integers the
	// bench computed): PostgreSQL takes no parameters in CREATE TABLE AS.
	base, count := e.Base, int64(e.Count)
	var stmts []string
	if dialect == "postgres" {
		at := "'" + created.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		readAt := at
		if !spec.read {
			readAt = "NULL"
		}
		stmts = []string{
			fmt.Sprintf(`CREATE TEMP TABLE bench_old ON COMMIT DROP AS
				SELECT k, %d + 1 + k %% %d AS emp, k / %d + 1 AS nth, nextval(pg_get_serial_sequence('notifications', 'id')) AS id
				FROM generate_series(0, %d) AS k ORDER BY k`, base, count, count, n-1),
			fmt.Sprintf(`INSERT INTO notifications (id, type, title, body, publisher, recipients, created_at)
				OVERRIDING SYSTEM VALUE
				SELECT id, '%s', 'An old notification', '', '%s', 1, %s FROM bench_old ORDER BY id`, spec.typ, spec.publisher, at),
			fmt.Sprintf(`INSERT INTO inbox (employee_id, seq, notification_id, read_at, seen_at, type)
				SELECT o.emp, e.last_seq + o.nth, o.id, %s, %s, '%s' FROM bench_old o JOIN employees e ON e.id = o.emp
				ORDER BY o.emp, o.nth`, readAt, readAt, spec.typ),
		}
	} else {
		var maxID int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM notifications`).Scan(&maxID); err != nil {
			return fmt.Errorf("old rows: %w", err)
		}
		at := created.UnixMilli()
		readAt := strconv.FormatInt(at, 10)
		if !spec.read {
			readAt = "NULL"
		}
		stmts = []string{
			fmt.Sprintf(`CREATE TEMP TABLE bench_old AS
				WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g WHERE k < %d)
				SELECT k, %d + 1 + k %% %d AS emp, k / %d + 1 AS nth, %d + 1 + k AS id FROM g`, n-1, base, count, count, maxID),
			fmt.Sprintf(`INSERT INTO notifications (id, type, title, body, publisher, recipients, created_at)
				SELECT id, '%s', 'An old notification', '', '%s', 1, %d FROM bench_old ORDER BY id`, spec.typ, spec.publisher, at),
			fmt.Sprintf(`INSERT INTO inbox (employee_id, seq, notification_id, read_at, seen_at, type)
				SELECT o.emp, e.last_seq + o.nth, o.id, %s, %s, '%s' FROM bench_old o JOIN employees e ON e.id = o.emp
				ORDER BY o.emp, o.nth`, readAt, readAt, spec.typ),
		}
	}
	// Employee i (0-based) got the copies k = i, i+E, i+2E, …: n/E of
	// them, one more when i < n mod E.
	stmts = append(stmts, fmt.Sprintf(`UPDATE employees SET last_seq = last_seq + %d
		+ CASE WHEN id - %d - 1 < %d THEN 1 ELSE 0 END WHERE id > %d AND id <= %d`,
		int64(n)/count, base, int64(n)%count, base, base+count))
	if dialect == "sqlite" {
		stmts = append(stmts, `DROP TABLE bench_old`)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("old rows: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("old rows: %w", err)
	}
	// Statistics as a long-lived database has them (autovacuum).
	analyze := `ANALYZE`
	switch {
	case dialect == "postgres" && spec.asLived:
		analyze = `VACUUM (ANALYZE) notifications, inbox, employees`
	case dialect == "postgres":
		analyze = `ANALYZE notifications, inbox, employees`
	case spec.asLived:
		return nil
	}
	if _, err := db.ExecContext(ctx, analyze); err != nil {
		return fmt.Errorf("old rows: %w", err)
	}
	return nil
}

// oldRowsLeft counts the notifications --old-rows wrote that are still
// stored. It only counts: the server's sweep may still be deleting them,
// and a DELETE of the same rows in another order would deadlock with it
// (PostgreSQL's are removed by cleanup, once the server has stopped;
// SQLite's file goes with the run's temp dir).
func oldRowsLeft(ctx context.Context, dsn string) (int64, error) {
	db, dialect, err := openDatabase(dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	q := `SELECT count(*) FROM notifications WHERE type = ? AND publisher = ?`
	if dialect == "postgres" {
		q = `SELECT count(*) FROM notifications WHERE type = $1 AND publisher = $2`
	}
	var left int64
	if err := db.QueryRowContext(ctx, q, oldType, oldPublisher).Scan(&left); err != nil {
		return 0, fmt.Errorf("count old rows: %w", err)
	}
	return left, nil
}

// removeOldRows deletes from a PostgreSQL database what is left of
// --old-rows' notifications, so that a shared database stays as the run
// found it. The servers must have stopped (their sweep deletes the same
// rows).
func removeOldRows(ctx context.Context, dsn string) error {
	db, dialect, err := openDatabase(dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if dialect != "postgres" {
		return nil
	}
	_, err = deleteOldRows(ctx, db)
	return err
}

// deleteOldRows removes what is left of --old-rows' notifications from a
// PostgreSQL database and returns how many there were.
func deleteOldRows(ctx context.Context, db *sql.DB) (int64, error) {
	var left int64
	// Their copies go with them (ON DELETE CASCADE).
	res, err := db.ExecContext(ctx, `DELETE FROM notifications WHERE type = $1 AND publisher = $2`, oldType, oldPublisher)
	if err == nil {
		left, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fmt.Errorf("remove old rows: %w", err)
	}
	return left, nil
}
