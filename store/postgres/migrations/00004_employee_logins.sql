-- A login (a username or an email) names at most one employee, across both
-- columns: one employee's username cannot be another's email (issue 14:
-- otherwise a token for that login could open either inbox). The primary
-- key of employee_logins enforces it, also between instances racing to save
-- the same login; EmployeeByLogin reads it.
--
-- Logins are canonical: ASCII letters lower-cased, nothing else changed
-- (store.NormalizeLogin). herald_fold_login is that folding in SQL:
-- translate() over A-Z, independent of the database's locale (lower()
-- follows the collation and would fold the Kelvin sign U+212A to "k"). The
-- CHECK refuses exactly what Go would fold further.
--
-- Existing rows: usernames are entered before emails (in id order), so a
-- login that named two employees keeps naming the one lookups found before
-- (by username); the other employee's duplicate is left out.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION herald_fold_login(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
	SELECT translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
$fn$;
-- +goose StatementEnd

CREATE TABLE employee_logins (
    login       text   PRIMARY KEY CHECK (login <> '' AND login = herald_fold_login(login)),
    employee_id bigint NOT NULL REFERENCES employees (id) ON DELETE CASCADE
);
CREATE INDEX employee_logins_employee ON employee_logins (employee_id);

INSERT INTO employee_logins (login, employee_id)
    SELECT herald_fold_login(username), id FROM employees WHERE username <> '' ORDER BY id
    ON CONFLICT DO NOTHING;
INSERT INTO employee_logins (login, employee_id)
    SELECT herald_fold_login(email), id FROM employees WHERE email <> '' ORDER BY id
    ON CONFLICT DO NOTHING;

-- +goose Down
DROP TABLE employee_logins;
DROP FUNCTION herald_fold_login(text);
