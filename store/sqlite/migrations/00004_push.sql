-- Web Push: the browsers' subscriptions, the copies written to a stream,
-- and the queue of pushes (see store/push.go).

-- +goose Up
CREATE TABLE push_subscriptions (
    id          INTEGER PRIMARY KEY,
    employee_id INTEGER NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    endpoint    TEXT    NOT NULL UNIQUE,
    p256dh      BLOB    NOT NULL,
    auth        BLOB    NOT NULL,
    decided_seq INTEGER NOT NULL,      -- the employee's copies up to it are decided
    created_at  INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_employee ON push_subscriptions (employee_id, created_at);

-- Set (for employees with subscriptions only) when a stream wrote the copy.
ALTER TABLE inbox ADD COLUMN streamed INTEGER NOT NULL DEFAULT 0;

CREATE TABLE push_jobs (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    employee_id     INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,  -- when it may be claimed (again)
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (employee_id, seq) REFERENCES inbox (employee_id, seq) ON DELETE CASCADE
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_subscription ON push_jobs (subscription_id);
CREATE INDEX push_jobs_copy ON push_jobs (employee_id, seq);

-- +goose Down
DROP TABLE push_jobs;
ALTER TABLE inbox DROP COLUMN streamed;
DROP TABLE push_subscriptions;
