-- The notification's type on each copy (inbox row), so that type filters
-- (GET /notifications?type=T or type=prefix.*) read the copies only and
-- join notifications for the page's items alone: with the type on
-- notifications, a page of a type one copy in ten has joined ten rows of
-- notifications per item, scattered through that table, to find it.
--
-- A type filter, exact (type=T) or a prefix (type=prefix.*), walks the
-- copies newest first (the primary key, or the partial index of its state
-- filter) and checks the type on each copy. Publishing and scheduled
-- delivery write the column with each copy.
--
-- There is no index on (employee_id, type, seq): it made every copy one
-- more b-tree insert at a place of its own (a broadcast to 1,000 employees
-- cost about 80% more CPU), to speed up only the filter on a type rare in
-- an inbox. A filter on a rare type reads more of the inbox, each row
-- cheaply (no join).

-- +goose Up
ALTER TABLE inbox ADD COLUMN type TEXT NOT NULL DEFAULT '';
UPDATE inbox SET type = (SELECT n.type FROM notifications n WHERE n.id = inbox.notification_id);

-- +goose Down
ALTER TABLE inbox DROP COLUMN type;
