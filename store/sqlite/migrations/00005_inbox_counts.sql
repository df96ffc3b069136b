-- The counts (unread, unseen) kept per employee, so that reading them
-- costs the same at 100,000 items as at 10: counting the partial indexes
-- inbox_unread and inbox_unseen takes milliseconds once an inbox holds
-- tens of thousands of unread items.
--
-- inbox_counts holds, per employee, the copies that are unread (and
-- unseen) and not archived, expired ones included: expiry is the passing
-- of time, not a write. Counts subtract the expired ones still stored,
-- found through inbox_expiring (the retention sweep deletes them soon
-- after they expire, so there are few). Triggers on inbox keep the row
-- right in the transaction of every write, whatever writes: publishes,
-- scheduled deliveries, state changes, withdrawals, the sweep, an
-- employee's deletion. The insert trigger always writes the row, so every
-- employee with copies has one and the update trigger finds it.

-- +goose Up
CREATE TABLE inbox_counts (
    employee_id INTEGER PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    unread      INTEGER NOT NULL DEFAULT 0,
    unseen      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO inbox_counts (employee_id, unread, unseen)
    SELECT employee_id, sum(read_at IS NULL AND archived_at IS NULL), sum(seen_at IS NULL AND archived_at IS NULL)
    FROM inbox GROUP BY employee_id;

CREATE INDEX inbox_expiring ON inbox (employee_id, expires_at, read_at, seen_at, archived_at) WHERE expires_at IS NOT NULL;

-- +goose StatementBegin
CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox BEGIN
    INSERT INTO inbox_counts (employee_id, unread, unseen)
        VALUES (NEW.employee_id, NEW.read_at IS NULL AND NEW.archived_at IS NULL, NEW.seen_at IS NULL AND NEW.archived_at IS NULL)
        ON CONFLICT (employee_id) DO UPDATE SET unread = unread + excluded.unread, unseen = unseen + excluded.unseen;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER inbox_counts_update AFTER UPDATE OF read_at, seen_at, archived_at ON inbox BEGIN
    UPDATE inbox_counts SET
        unread = unread + (NEW.read_at IS NULL AND NEW.archived_at IS NULL) - (OLD.read_at IS NULL AND OLD.archived_at IS NULL),
        unseen = unseen + (NEW.seen_at IS NULL AND NEW.archived_at IS NULL) - (OLD.seen_at IS NULL AND OLD.archived_at IS NULL)
    WHERE employee_id = NEW.employee_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox
WHEN OLD.archived_at IS NULL AND (OLD.read_at IS NULL OR OLD.seen_at IS NULL) BEGIN
    UPDATE inbox_counts SET unread = unread - (OLD.read_at IS NULL), unseen = unseen - (OLD.seen_at IS NULL)
    WHERE employee_id = OLD.employee_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER inbox_counts_delete;
DROP TRIGGER inbox_counts_update;
DROP TRIGGER inbox_counts_insert;
DROP INDEX inbox_expiring;
DROP TABLE inbox_counts;
