-- Web Push: the browsers' subscriptions, the copies written to a stream,
-- and the queue of pushes (see store/push.go).

-- +goose Up
CREATE TABLE push_subscriptions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id bigint      NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    endpoint    text        NOT NULL UNIQUE,
    p256dh      bytea       NOT NULL,
    auth        bytea       NOT NULL,
    decided_seq bigint      NOT NULL,   -- the employee's copies up to it are decided
    created_at  timestamptz NOT NULL
);
CREATE INDEX push_subscriptions_employee ON push_subscriptions (employee_id, created_at);

-- Set (for employees with subscriptions only) when a stream wrote the copy.
-- Not indexed, so setting it is a HOT update.
ALTER TABLE inbox ADD COLUMN streamed boolean NOT NULL DEFAULT false;

CREATE TABLE push_jobs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint      NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    employee_id     bigint      NOT NULL,
    seq             bigint      NOT NULL,
    due_at          timestamptz NOT NULL,  -- when it may be claimed (again)
    expires_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    FOREIGN KEY (employee_id, seq) REFERENCES inbox (employee_id, seq) ON DELETE CASCADE
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_subscription ON push_jobs (subscription_id);
CREATE INDEX push_jobs_copy ON push_jobs (employee_id, seq);

-- +goose Down
DROP TABLE push_jobs;
ALTER TABLE inbox DROP COLUMN streamed;
DROP TABLE push_subscriptions;
