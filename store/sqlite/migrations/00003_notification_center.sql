-- The notification center: seen and archived state, links, expiry,
-- scheduled delivery, withdrawal by the publisher, preferences.
--
-- Copies (inbox rows) carry what counts and replay filter on, so that
-- neither joins notifications: expires_at (copied from the notification),
-- muted (stored read and seen for an employee who muted the type: kept in
-- history, never delivered live or replayed). Counts read the partial
-- indexes inbox_unread and inbox_unseen, which hold only the items that
-- count.

-- +goose Up
ALTER TABLE notifications ADD COLUMN url TEXT;           -- where a click leads, or NULL
ALTER TABLE notifications ADD COLUMN expires_at INTEGER; -- or NULL: never
ALTER TABLE notifications ADD COLUMN deliver_at INTEGER; -- the scheduled time, or NULL
ALTER TABLE notifications ADD COLUMN required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN owner TEXT NOT NULL DEFAULT ''; -- the publisher identity that may withdraw it
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX notifications_owner ON notifications (owner, id);
CREATE INDEX notifications_expires ON notifications (expires_at) WHERE expires_at IS NOT NULL;

ALTER TABLE inbox ADD COLUMN seen_at INTEGER;
ALTER TABLE inbox ADD COLUMN archived_at INTEGER;
ALTER TABLE inbox ADD COLUMN expires_at INTEGER;
ALTER TABLE inbox ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;

-- Items already read count as seen.
UPDATE inbox SET seen_at = read_at WHERE read_at IS NOT NULL;

DROP INDEX inbox_unread;
CREATE INDEX inbox_unread ON inbox (employee_id, seq, expires_at) WHERE read_at IS NULL AND archived_at IS NULL;
CREATE INDEX inbox_unseen ON inbox (employee_id, seq, expires_at) WHERE seen_at IS NULL AND archived_at IS NULL;
CREATE INDEX inbox_archived ON inbox (employee_id, seq) WHERE archived_at IS NOT NULL;
CREATE INDEX inbox_expires ON inbox (expires_at) WHERE expires_at IS NOT NULL;

-- Recipients of scheduled notifications, resolved at publish time; a row
-- becomes an inbox copy (with its seq) at due_at.
CREATE TABLE scheduled (
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    employee_id     INTEGER NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    due_at          INTEGER NOT NULL,
    PRIMARY KEY (notification_id, employee_id)
) WITHOUT ROWID;
CREATE INDEX scheduled_due ON scheduled (due_at, notification_id);
CREATE INDEX scheduled_employee ON scheduled (employee_id);

CREATE TABLE preferences (
    employee_id INTEGER PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    muted       TEXT    NOT NULL DEFAULT '[]', -- JSON array of types and "prefix.*" patterns
    push        INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE preferences;
DROP TABLE scheduled;
DROP INDEX inbox_expires;
DROP INDEX inbox_archived;
DROP INDEX inbox_unseen;
DROP INDEX inbox_unread;
CREATE INDEX inbox_unread ON inbox (employee_id, seq) WHERE read_at IS NULL;
ALTER TABLE inbox DROP COLUMN muted;
ALTER TABLE inbox DROP COLUMN expires_at;
ALTER TABLE inbox DROP COLUMN archived_at;
ALTER TABLE inbox DROP COLUMN seen_at;
DROP INDEX notifications_expires;
DROP INDEX notifications_owner;
DROP INDEX notifications_created;
ALTER TABLE notifications DROP COLUMN owner;
ALTER TABLE notifications DROP COLUMN required;
ALTER TABLE notifications DROP COLUMN deliver_at;
ALTER TABLE notifications DROP COLUMN expires_at;
ALTER TABLE notifications DROP COLUMN url;
