-- The notification's type on each copy (inbox row), so that type filters
-- (GET /notifications?type=T or type=prefix.*) read the copies only and
-- join notifications for the page's items alone: with the type on
-- notifications, a page of a type one copy in ten has joined ten rows of
-- notifications per item, scattered through that table, to find it.
--
-- inbox_type finds the copies of one type, newest first, without
-- reading the others (type=T); a prefix (type=prefix.*) walks the copies
-- newest first (the primary key, or the partial index of its state
-- filter) and checks the type on each copy. Publishing and scheduled
-- delivery write the column with each copy; the type never changes, so
-- state changes do not touch the index.

-- +goose Up
ALTER TABLE inbox ADD COLUMN type TEXT NOT NULL DEFAULT '';
UPDATE inbox SET type = (SELECT n.type FROM notifications n WHERE n.id = inbox.notification_id);
CREATE INDEX inbox_type ON inbox (employee_id, type, seq);

-- +goose Down
DROP INDEX inbox_type;
ALTER TABLE inbox DROP COLUMN type;
