package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

type employeeRow struct {
	ID        int64          `db:"id"`
	Email     sql.NullString `db:"email"`
	Username  sql.NullString `db:"username"`
	Name      string         `db:"name"`
	Roles     pq.StringArray `db:"roles"`
	CreatedAt time.Time      `db:"created_at"`
	UpdatedAt time.Time      `db:"updated_at"`
}

const employeeCols = `id, email, username, name, roles, created_at, updated_at`

func (r employeeRow) employee() store.Employee {
	roles := []string(r.Roles)
	if roles == nil {
		roles = []string{}
	}
	return store.Employee{
		ID: r.ID, Email: r.Email.String, Username: r.Username.String, Name: r.Name, Roles: roles,
		CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

// PutEmployee creates or replaces an employee in one statement, which also
// tells every instance (pg_notify at commit) to forget cached lookups.
// The unique indexes on email and username decide conflicts, so two
// instances racing for the same email cannot both win.
func (db *DB) PutEmployee(ctx context.Context, e store.Employee) (store.Employee, bool, error) {
	e.Email = store.NormalizeLogin(e.Email)
	e.Username = store.NormalizeLogin(e.Username)
	e.Roles = store.NormalizeRoles(e.Roles)
	t := now()
	var row struct {
		employeeRow
		// xmax is 0 for a freshly inserted row version and the updating
		// transaction's id for an updated one: that is how an upsert tells
		// "created" from "replaced" in one statement.
		Created bool `db:"created"`
		Notify  bool `db:"notified"`
	}
	err := db.x.GetContext(ctx, &row, `
		WITH up AS (
			INSERT INTO employees (id, email, username, name, roles, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5::text[], $6, $6)
			ON CONFLICT (id) DO UPDATE SET email = excluded.email, username = excluded.username,
				name = excluded.name, roles = excluded.roles, updated_at = excluded.updated_at
			RETURNING `+employeeCols+`, xmax = 0 AS created
		)
		SELECT up.*, pg_notify($7, 'u' || up.id) IS NOT NULL AS notified FROM up`,
		e.ID, nullable(e.Email), nullable(e.Username), e.Name, pq.StringArray(e.Roles), t, channel)
	if isUniqueViolation(err) {
		return store.Employee{}, false, wrap(ctx, "put employee", store.ErrConflict)
	}
	if err != nil {
		return store.Employee{}, false, wrap(ctx, "put employee", err)
	}
	return row.employee(), row.Created, nil
}

// DeleteEmployee removes an employee with their inbox (ON DELETE CASCADE)
// and tells every instance to close their streams.
func (db *DB) DeleteEmployee(ctx context.Context, id int64) error {
	var deleted []int64
	err := db.x.SelectContext(ctx, &deleted, `
		WITH d AS (DELETE FROM employees WHERE id = $1 RETURNING id)
		SELECT d.id FROM d WHERE pg_notify($2, 'd' || d.id) IS NOT NULL`, id, channel)
	if err != nil {
		return wrap(ctx, "delete employee", err)
	}
	if len(deleted) == 0 {
		return wrap(ctx, "delete employee", store.ErrNotFound)
	}
	return nil
}

// Employee returns one employee by ID.
func (db *DB) Employee(ctx context.Context, id int64) (store.Employee, error) {
	var row employeeRow
	err := db.x.GetContext(ctx, &row, `SELECT `+employeeCols+` FROM employees WHERE id = $1`, id)
	if err != nil {
		return store.Employee{}, wrap(ctx, "get employee", noRows(err))
	}
	return row.employee(), nil
}

// EmployeeByLogin finds an employee by username, else by email.
func (db *DB) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	login = store.NormalizeLogin(login)
	if login == "" {
		return store.Employee{}, wrap(ctx, "find employee", store.ErrNotFound)
	}
	var row employeeRow
	err := db.x.GetContext(ctx, &row, `SELECT `+employeeCols+` FROM employees
		WHERE username = $1 OR email = $1 ORDER BY username IS NOT DISTINCT FROM $1 DESC LIMIT 1`, login)
	if err != nil {
		return store.Employee{}, wrap(ctx, "find employee", noRows(err))
	}
	return row.employee(), nil
}

// Employees lists employees ordered by ID.
func (db *DB) Employees(ctx context.Context, after int64, limit int) ([]store.Employee, error) {
	var rows []employeeRow
	err := db.x.SelectContext(ctx, &rows, `SELECT `+employeeCols+` FROM employees WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap(ctx, "list employees", err)
	}
	out := make([]store.Employee, len(rows))
	for i, r := range rows {
		out[i] = r.employee()
	}
	return out, nil
}
