-- Herald schema for PostgreSQL. The same model as the SQLite schema, with
-- PostgreSQL types: roles are an array (GIN-indexed for role targets), data
-- is json (kept as sent), times are timestamptz.

-- +goose Up
CREATE TABLE employees (
    id         bigint      PRIMARY KEY,
    email      text        UNIQUE,          -- lower-cased; NULL when unknown
    username   text        UNIQUE,          -- lower-cased; NULL when unknown
    name       text        NOT NULL DEFAULT '',
    roles      text[]      NOT NULL DEFAULT '{}', -- normalized: sorted, distinct
    last_seq   bigint      NOT NULL DEFAULT 0,    -- the employee's latest inbox seq
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);
CREATE INDEX employees_roles ON employees USING gin (roles);

CREATE TABLE notifications (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type       text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    data       json,                        -- a JSON object as sent, or NULL
    publisher  text        NOT NULL DEFAULT '',
    recipients integer     NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE inbox (
    employee_id     bigint      NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    read_at         timestamptz,
    PRIMARY KEY (employee_id, seq)
);
CREATE INDEX inbox_unread ON inbox (employee_id, seq) WHERE read_at IS NULL;
-- Listeners read the recipients of large fan-outs by notification.
CREATE INDEX inbox_notification ON inbox (notification_id);

CREATE TABLE idempotency_keys (
    owner        text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    result       text,                      -- JSON of the first answer; set before commit
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Ephemeral messages too large for a NOTIFY payload wait here for the
-- listeners to read them; rows older than a few minutes are deleted.
CREATE TABLE ephemeral_messages (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ephemeral_messages_created ON ephemeral_messages (created_at);

-- +goose Down
DROP TABLE ephemeral_messages;
DROP TABLE idempotency_keys;
DROP TABLE inbox;
DROP TABLE notifications;
DROP TABLE employees;
