package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/corp/herald/store"
)

type employeeRow struct {
	ID        int64          `db:"id"`
	Email     sql.NullString `db:"email"`
	Username  sql.NullString `db:"username"`
	Name      string         `db:"name"`
	Roles     string         `db:"roles"`
	CreatedAt int64          `db:"created_at"`
	UpdatedAt int64          `db:"updated_at"`
}

const employeeCols = `id, email, username, name, roles, created_at, updated_at`

func (r employeeRow) employee() store.Employee {
	e := store.Employee{
		ID:        r.ID,
		Email:     r.Email.String,
		Username:  r.Username.String,
		Name:      r.Name,
		CreatedAt: store.FromMillis(r.CreatedAt),
		UpdatedAt: store.FromMillis(r.UpdatedAt),
	}
	_ = json.Unmarshal([]byte(r.Roles), &e.Roles)
	if e.Roles == nil {
		e.Roles = []string{}
	}
	return e
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// PutEmployee creates or replaces an employee. Writes are serialized
// (writeMu), so checking the logins and then writing them cannot race.
func (db *DB) PutEmployee(ctx context.Context, e store.Employee) (store.Employee, bool, error) {
	e.Email = store.NormalizeLogin(e.Email)
	e.Username = store.NormalizeLogin(e.Username)
	e.Roles = store.NormalizeRoles(e.Roles)
	roles, _ := json.Marshal(e.Roles)
	logins, _ := json.Marshal(e.Logins())
	now := store.Millis(time.Now())

	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	defer db.boundWALLocked()
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	defer tx.Rollback()

	if err := loginClash(ctx, tx, e, string(logins)); err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	var existed int
	if err := tx.GetContext(ctx, &existed, `SELECT count(*) FROM employees WHERE id = ?`, e.ID); err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO employees (id, email, username, name, roles, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET email = excluded.email, username = excluded.username,
			name = excluded.name, roles = excluded.roles, updated_at = excluded.updated_at`,
		e.ID, nullable(e.Email), nullable(e.Username), e.Name, string(roles), now, now)
	if err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	for _, q := range []struct{ sql, arg string }{
		{`DELETE FROM employee_roles WHERE employee_id = ?1`, ""},
		{`INSERT INTO employee_roles (role, employee_id) SELECT value, ?1 FROM json_each(?2)`, string(roles)},
		{`DELETE FROM employee_logins WHERE employee_id = ?1`, ""},
		{`INSERT INTO employee_logins (login, employee_id) SELECT value, ?1 FROM json_each(?2)`, string(logins)},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, e.ID, q.arg); err != nil {
			return store.Employee{}, false, wrap("put employee roles and logins", err)
		}
	}
	var row employeeRow
	if err := tx.GetContext(ctx, &row, `SELECT `+employeeCols+` FROM employees WHERE id = ?`, e.ID); err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	if err := tx.Commit(); err != nil {
		return store.Employee{}, false, wrap("put employee", err)
	}
	db.notifyEmployee(e.ID, false)
	return row.employee(), existed == 0, nil
}

// loginClash returns a *store.ConflictError when one of e's logins (a JSON
// array) already names another employee, in the login table or in either
// column (a database from before the login table may hold a login twice).
func loginClash(ctx context.Context, q querier, e store.Employee, logins string) error {
	var clash []struct {
		Login    string `db:"login"`
		Employee int64  `db:"employee_id"`
	}
	err := q.SelectContext(ctx, &clash, `
		WITH mine(login) AS (SELECT value FROM json_each(?1))
		SELECT login, employee_id FROM employee_logins WHERE login IN mine AND employee_id <> ?2
		UNION ALL SELECT username, id FROM employees WHERE username IN mine AND id <> ?2
		UNION ALL SELECT email, id FROM employees WHERE email IN mine AND id <> ?2
		LIMIT 1`, logins, e.ID)
	if err != nil {
		return err
	}
	if len(clash) > 0 {
		c := clash[0]
		return &store.ConflictError{Field: e.LoginField(c.Login), Login: c.Login, Employee: c.Employee}
	}
	return nil
}

// DeleteEmployee removes an employee, their roles and their inbox.
func (db *DB) DeleteEmployee(ctx context.Context, id int64) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	defer db.boundWALLocked()
	db.deletes.Add(1)
	defer db.deletes.Add(1) // after notifyEmployee has ended the streams
	res, err := db.x.ExecContext(ctx, `DELETE FROM employees WHERE id = ?`, id)
	if err != nil {
		return wrap("delete employee", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap("delete employee", store.ErrNotFound)
	}
	db.notifyEmployee(id, true)
	return nil
}

// Employee returns one employee by ID.
func (db *DB) Employee(ctx context.Context, id int64) (store.Employee, error) {
	var row employeeRow
	err := db.x.GetContext(ctx, &row, `SELECT `+employeeCols+` FROM employees WHERE id = ?`, id)
	if err != nil {
		return store.Employee{}, wrap("get employee", noRows(err))
	}
	return row.employee(), nil
}

// EmployeeByLogin finds the employee a login (username or email) names.
func (db *DB) EmployeeByLogin(ctx context.Context, login string) (store.Employee, error) {
	login = store.NormalizeLogin(login)
	if login == "" {
		return store.Employee{}, wrap("find employee", store.ErrNotFound)
	}
	var row employeeRow
	st, err := db.prepared(ctx, db.x, `SELECT `+employeeCols+` FROM employees
		WHERE id = (SELECT employee_id FROM employee_logins WHERE login = ?1)`)
	if err == nil {
		err = st.GetContext(ctx, &row, login)
	}
	if err != nil {
		return store.Employee{}, wrap("find employee", noRows(err))
	}
	return row.employee(), nil
}

// Employees lists employees ordered by ID.
func (db *DB) Employees(ctx context.Context, after int64, limit int) ([]store.Employee, error) {
	var rows []employeeRow
	err := db.x.SelectContext(ctx, &rows, `SELECT `+employeeCols+` FROM employees WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("list employees", err)
	}
	out := make([]store.Employee, len(rows))
	for i, r := range rows {
		out[i] = r.employee()
	}
	return out, nil
}
