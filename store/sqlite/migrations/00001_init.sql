-- Herald schema for SQLite. Times are Unix milliseconds (UTC).

-- +goose Up
CREATE TABLE employees (
    id         INTEGER PRIMARY KEY,
    email      TEXT UNIQUE,           -- lower-cased; NULL when unknown
    username   TEXT UNIQUE,           -- lower-cased; NULL when unknown
    name       TEXT    NOT NULL DEFAULT '',
    roles      TEXT    NOT NULL DEFAULT '[]', -- JSON array, as given; employee_roles indexes it
    last_seq   INTEGER NOT NULL DEFAULT 0,    -- the employee's latest inbox seq
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);

CREATE TABLE employee_roles (
    role        TEXT    NOT NULL,
    employee_id INTEGER NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    PRIMARY KEY (role, employee_id)
) WITHOUT ROWID;
CREATE INDEX employee_roles_employee ON employee_roles (employee_id);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    type       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL DEFAULT '',
    data       TEXT,                  -- JSON object or NULL
    publisher  TEXT    NOT NULL DEFAULT '',
    recipients INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE inbox (
    employee_id     INTEGER NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    read_at         INTEGER,
    PRIMARY KEY (employee_id, seq)
) WITHOUT ROWID;
CREATE INDEX inbox_unread ON inbox (employee_id, seq) WHERE read_at IS NULL;
CREATE INDEX inbox_notification ON inbox (notification_id);

CREATE TABLE idempotency_keys (
    owner        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    result       TEXT    NOT NULL,    -- JSON of the first answer
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE inbox;
DROP TABLE notifications;
DROP TABLE employee_roles;
DROP TABLE employees;
