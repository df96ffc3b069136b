package postgres

import (
	"context"
	"database/sql"
	"fmt"
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

// PutEmployee creates or replaces an employee and its logins in one
// transaction, which also tells every instance (pg_notify at commit) to
// forget cached lookups. The primary key of employee_logins (and the unique
// email and username) decide conflicts, so two instances racing for the
// same login cannot both win: the loser retries and finds the winner.
func (db *DB) PutEmployee(ctx context.Context, e store.Employee) (store.Employee, bool, error) {
	e.Email = store.NormalizeLogin(e.Email)
	e.Username = store.NormalizeLogin(e.Username)
	e.Roles = store.NormalizeRoles(e.Roles)
	for attempt := 1; ; attempt++ {
		saved, created, err := db.putEmployee(ctx, e)
		if isUniqueViolation(err) && attempt < 3 {
			continue // a concurrent put took a login first: look again
		}
		if isUniqueViolation(err) {
			err = store.ErrConflict
		}
		return saved, created, wrap(ctx, "put employee", err)
	}
}

func (db *DB) putEmployee(ctx context.Context, e store.Employee) (store.Employee, bool, error) {
	logins := pq.StringArray(e.Logins())
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return store.Employee{}, false, err
	}
	defer tx.Rollback()
	if err := loginClash(ctx, tx, e, logins); err != nil {
		return store.Employee{}, false, err
	}
	var row struct {
		employeeRow
		// xmax is 0 for a freshly inserted row version and the updating
		// transaction's id for an updated one: that is how an upsert tells
		// "created" from "replaced" in one statement.
		Created bool `db:"created"`
		Notify  bool `db:"notified"`
	}
	err = tx.GetContext(ctx, &row, `
		WITH up AS (
			INSERT INTO employees (id, email, username, name, roles, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5::text[], $6, $6)
			ON CONFLICT (id) DO UPDATE SET email = excluded.email, username = excluded.username,
				name = excluded.name, roles = excluded.roles, updated_at = excluded.updated_at
			RETURNING `+employeeCols+`, xmax = 0 AS created
		)
		SELECT up.*, pg_notify($7, 'u' || up.id) IS NOT NULL AS notified FROM up`,
		e.ID, nullable(e.Email), nullable(e.Username), e.Name, pq.StringArray(e.Roles), now(), channel)
	if err != nil {
		return store.Employee{}, false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM employee_logins WHERE employee_id = $1`, e.ID); err != nil {
		return store.Employee{}, false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO employee_logins (login, employee_id) SELECT unnest($2::text[]), $1`, e.ID, logins)
	if err != nil {
		return store.Employee{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return store.Employee{}, false, inFlight(err)
	}
	return row.employee(), row.Created, nil
}

// loginClash returns a *store.ConflictError when one of e's logins already
// names another employee, in the login table or in either column (a
// database from before the login table may hold a login twice).
func loginClash(ctx context.Context, q querier, e store.Employee, logins pq.StringArray) error {
	var clash []struct {
		Login    string `db:"login"`
		Employee int64  `db:"employee_id"`
	}
	err := q.SelectContext(ctx, &clash, `
		SELECT login, employee_id FROM employee_logins WHERE login = ANY($1::text[]) AND employee_id <> $2
		UNION ALL SELECT username, id FROM employees WHERE username = ANY($1::text[]) AND id <> $2
		UNION ALL SELECT email, id FROM employees WHERE email = ANY($1::text[]) AND id <> $2
		LIMIT 1`, logins, e.ID)
	if err != nil {
		return fmt.Errorf("check logins: %w", err)
	}
	if len(clash) > 0 {
		c := clash[0]
		return &store.ConflictError{Field: e.LoginField(c.Login), Login: c.Login, Employee: c.Employee}
	}
	return nil
}

// DeleteEmployee removes an employee with their inbox (ON DELETE CASCADE)
// and tells every instance to close their streams.
func (db *DB) DeleteEmployee(ctx context.Context, id int64) error {
	var deleted []int64
	err := db.write(ctx, func(q querier) error {
		return q.SelectContext(ctx, &deleted, `
			WITH d AS (DELETE FROM employees WHERE id = $1 RETURNING id)
			SELECT d.id FROM d WHERE pg_notify($2, 'd' || d.id) IS NOT NULL`, id, channel)
	})
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

// EmployeeByLogin finds the employee a login (username or email) names.
func (db *DB) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	login = store.NormalizeLogin(login)
	if login == "" {
		return store.Employee{}, wrap(ctx, "find employee", store.ErrNotFound)
	}
	var row employeeRow
	err := db.x.GetContext(ctx, &row, `SELECT `+employeeCols+` FROM employees
		WHERE id = (SELECT employee_id FROM employee_logins WHERE login = $1)`, login)
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
