-- A login (a username or an email) names at most one employee, across both
-- columns: one employee's username cannot be another's email (issue 14:
-- otherwise a token for that login could open either inbox). The primary
-- key of employee_logins enforces it; EmployeeByLogin reads it.
--
-- Logins are canonical: ASCII letters lower-cased, nothing else changed
-- (store.NormalizeLogin). SQLite's built-in lower() folds ASCII only, so the
-- CHECK refuses exactly what Go would fold further.
--
-- Existing rows: usernames are entered before emails (in id order), so a
-- login that named two employees keeps naming the one lookups found before
-- (by username); the other employee's duplicate is left out.

-- +goose Up
CREATE TABLE employee_logins (
    login       TEXT    PRIMARY KEY CHECK (login <> '' AND login = lower(login)),
    employee_id INTEGER NOT NULL REFERENCES employees (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX employee_logins_employee ON employee_logins (employee_id);

INSERT OR IGNORE INTO employee_logins (login, employee_id)
    SELECT lower(username), id FROM employees WHERE username IS NOT NULL AND username <> '' ORDER BY id;
INSERT OR IGNORE INTO employee_logins (login, employee_id)
    SELECT lower(email), id FROM employees WHERE email IS NOT NULL AND email <> '' ORDER BY id;

-- +goose Down
DROP TABLE employee_logins;
