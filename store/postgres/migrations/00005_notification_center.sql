-- The notification center: seen and archived state, links, expiry,
-- scheduled delivery, withdrawal by the publisher, preferences. The same
-- model as SQLite's migration 00003.
--
-- Copies (inbox rows) carry what counts and replay filter on, so that
-- neither joins notifications: expires_at (copied from the notification)
-- and muted (stored read and seen for an employee who muted the type:
-- kept in history, never delivered live or replayed). Counts read the
-- partial indexes inbox_unread and inbox_unseen, which hold only the items
-- that count and cover expires_at.
--
-- herald_publish_batch (00003) is replaced: it stores the new fields,
-- stores muted copies read and seen, and leaves them out of the NOTIFY
-- (live delivery). herald_muted is the mute rule of store.Muted in SQL.

-- +goose Up
ALTER TABLE notifications
    ADD COLUMN url text,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN deliver_at timestamptz,
    ADD COLUMN required boolean NOT NULL DEFAULT false,
    ADD COLUMN owner text NOT NULL DEFAULT '';
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX notifications_owner ON notifications (owner, id);
CREATE INDEX notifications_expires ON notifications (expires_at) WHERE expires_at IS NOT NULL;

ALTER TABLE inbox
    ADD COLUMN seen_at timestamptz,
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN muted boolean NOT NULL DEFAULT false;
UPDATE inbox SET seen_at = read_at WHERE read_at IS NOT NULL;

DROP INDEX inbox_unread;
CREATE INDEX inbox_unread ON inbox (employee_id, seq) INCLUDE (expires_at) WHERE read_at IS NULL AND archived_at IS NULL;
CREATE INDEX inbox_unseen ON inbox (employee_id, seq) INCLUDE (expires_at) WHERE seen_at IS NULL AND archived_at IS NULL;
CREATE INDEX inbox_archived ON inbox (employee_id, seq) WHERE archived_at IS NOT NULL;
CREATE INDEX inbox_expires ON inbox (expires_at) WHERE expires_at IS NOT NULL;

-- Recipients of scheduled notifications, resolved at publish time; a row
-- becomes an inbox copy (with its seq) at due_at.
CREATE TABLE scheduled (
    notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    employee_id     bigint      NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    due_at          timestamptz NOT NULL,
    PRIMARY KEY (notification_id, employee_id)
);
CREATE INDEX scheduled_due ON scheduled (due_at, notification_id);
CREATE INDEX scheduled_employee ON scheduled (employee_id);

CREATE TABLE preferences (
    employee_id bigint      PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    muted       text[]      NOT NULL DEFAULT '{}', -- types and "prefix.*" patterns
    push        boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION herald_muted(patterns text[], typ text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
	SELECT EXISTS (SELECT 1 FROM unnest(patterns) p
		WHERE p = typ OR (right(p, 1) = '*' AND starts_with(typ, left(p, -1))))
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_publish_batch(batch json, created timestamptz, channel text, inline_max int)
RETURNS TABLE (k bigint, id bigint, recipients bigint, known_ids bigint[], known_emails text[], notified boolean)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH msg AS MATERIALIZED (
		SELECT t.k, t.m->>'ty' AS type, t.m->>'ti' AS title, t.m->>'bo' AS body, (t.m->>'da')::json AS data,
			t.m->>'pu' AS publisher, (t.m->>'all')::boolean AS all_,
			ARRAY(SELECT json_array_elements_text(t.m->'ids')::bigint) AS ids,
			ARRAY(SELECT json_array_elements_text(t.m->'em')) AS emails,
			ARRAY(SELECT json_array_elements_text(t.m->'ro')) AS roles,
			t.m->>'ur' AS url, (t.m->>'ex')::timestamptz AS expires_at,
			coalesce((t.m->>'rq')::boolean, false) AS required, coalesce(t.m->>'ow', '') AS owner
		FROM json_array_elements(batch::json) WITH ORDINALITY AS t(m, k)
	),
	pairs AS MATERIALIZED (
		SELECT DISTINCT k, id FROM (
			SELECT msg.k, e.id FROM msg JOIN employees e ON e.id = ANY(msg.ids)
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.email = ANY(msg.emails)
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.roles && msg.roles
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON msg.all_
		) p
	),
	quiet AS MATERIALIZED (
		SELECT p.k, p.id FROM pairs p JOIN msg USING (k) JOIN preferences pr ON pr.employee_id = p.id
		WHERE NOT msg.required AND cardinality(pr.muted) > 0 AND herald_muted(pr.muted, msg.type)
	),
	recipients AS MATERIALIZED (SELECT coalesce(array_agg(DISTINCT id), '{}') AS ids FROM pairs),
	locked AS MATERIALIZED (
		SELECT id FROM employees WHERE id = ANY((SELECT ids FROM recipients)::bigint[]) ORDER BY id FOR NO KEY UPDATE
	),
	counts AS (SELECT id, count(*) AS c FROM pairs GROUP BY id),
	bumped AS (
		UPDATE employees e SET last_seq = e.last_seq + counts.c
		FROM counts, locked WHERE e.id = locked.id AND locked.id = counts.id
		RETURNING e.id, e.last_seq - counts.c AS base
	),
	seqs AS (
		SELECT p.k, p.id, b.base + row_number() OVER (PARTITION BY p.id ORDER BY p.k) AS seq,
			EXISTS (SELECT 1 FROM quiet q WHERE q.k = p.k AND q.id = p.id) AS muted
		FROM pairs p JOIN bumped b ON b.id = p.id
	),
	per_msg AS (
		SELECT k, count(*) AS n, count(*) FILTER (WHERE NOT muted) AS live,
			CASE WHEN count(*) FILTER (WHERE NOT muted) <= inline_max
				THEN string_agg(id || ':' || seq, ',') FILTER (WHERE NOT muted) END AS refs
		FROM seqs GROUP BY k
	),
	nids AS MATERIALIZED (
		SELECT k, nextval(pg_get_serial_sequence('notifications', 'id')) AS id FROM msg ORDER BY k
	),
	notes AS (
		INSERT INTO notifications (id, type, title, body, data, publisher, recipients, created_at, url, expires_at, required, owner)
		OVERRIDING SYSTEM VALUE
		SELECT nids.id, msg.type, msg.title, msg.body, msg.data, msg.publisher, coalesce(per_msg.n, 0), created,
			msg.url, msg.expires_at, msg.required, msg.owner
		FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
	),
	ins AS (
		INSERT INTO inbox (employee_id, seq, notification_id, expires_at, muted, read_at, seen_at)
		SELECT seqs.id, seqs.seq, nids.id, msg.expires_at, seqs.muted,
			CASE WHEN seqs.muted THEN created END, CASE WHEN seqs.muted THEN created END
		FROM seqs JOIN nids USING (k) JOIN msg USING (k)
	)
	SELECT msg.k, nids.id, coalesce(per_msg.n, 0) AS recipients,
		ARRAY(SELECT e.id FROM employees e WHERE e.id = ANY(msg.ids)) AS known_ids,
		ARRAY(SELECT e.email FROM employees e WHERE e.email = ANY(msg.emails)) AS known_emails,
		CASE WHEN per_msg.live > 0 THEN pg_notify(channel, 'n' || nids.id || coalesce(' ' || per_msg.refs, '')) IS NOT NULL
		END AS notified
	FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
	ORDER BY msg.k;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_publish_batch(batch json, created timestamptz, channel text, inline_max int)
RETURNS TABLE (k bigint, id bigint, recipients bigint, known_ids bigint[], known_emails text[], notified boolean)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH msg AS MATERIALIZED (
		SELECT t.k, t.m->>'ty' AS type, t.m->>'ti' AS title, t.m->>'bo' AS body, (t.m->>'da')::json AS data,
			t.m->>'pu' AS publisher, (t.m->>'all')::boolean AS all_,
			ARRAY(SELECT json_array_elements_text(t.m->'ids')::bigint) AS ids,
			ARRAY(SELECT json_array_elements_text(t.m->'em')) AS emails,
			ARRAY(SELECT json_array_elements_text(t.m->'ro')) AS roles
		FROM json_array_elements(batch::json) WITH ORDINALITY AS t(m, k)
	),
	pairs AS MATERIALIZED (
		SELECT DISTINCT k, id FROM (
			SELECT msg.k, e.id FROM msg JOIN employees e ON e.id = ANY(msg.ids)
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.email = ANY(msg.emails)
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON e.roles && msg.roles
			UNION ALL SELECT msg.k, e.id FROM msg JOIN employees e ON msg.all_
		) p
	),
	recipients AS MATERIALIZED (SELECT coalesce(array_agg(DISTINCT id), '{}') AS ids FROM pairs),
	locked AS MATERIALIZED (
		SELECT id FROM employees WHERE id = ANY((SELECT ids FROM recipients)::bigint[]) ORDER BY id FOR NO KEY UPDATE
	),
	counts AS (SELECT id, count(*) AS c FROM pairs GROUP BY id),
	bumped AS (
		UPDATE employees e SET last_seq = e.last_seq + counts.c
		FROM counts, locked WHERE e.id = locked.id AND locked.id = counts.id
		RETURNING e.id, e.last_seq - counts.c AS base
	),
	seqs AS (
		SELECT p.k, p.id, b.base + row_number() OVER (PARTITION BY p.id ORDER BY p.k) AS seq
		FROM pairs p JOIN bumped b ON b.id = p.id
	),
	per_msg AS (
		SELECT k, count(*) AS n, CASE WHEN count(*) <= inline_max THEN string_agg(id || ':' || seq, ',') END AS refs
		FROM seqs GROUP BY k
	),
	nids AS MATERIALIZED (
		SELECT k, nextval(pg_get_serial_sequence('notifications', 'id')) AS id FROM msg ORDER BY k
	),
	notes AS (
		INSERT INTO notifications (id, type, title, body, data, publisher, recipients, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT nids.id, msg.type, msg.title, msg.body, msg.data, msg.publisher, coalesce(per_msg.n, 0), created
		FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
	),
	ins AS (
		INSERT INTO inbox (employee_id, seq, notification_id)
		SELECT seqs.id, seqs.seq, nids.id FROM seqs JOIN nids USING (k)
	)
	SELECT msg.k, nids.id, coalesce(per_msg.n, 0) AS recipients,
		ARRAY(SELECT e.id FROM employees e WHERE e.id = ANY(msg.ids)) AS known_ids,
		ARRAY(SELECT e.email FROM employees e WHERE e.email = ANY(msg.emails)) AS known_emails,
		CASE WHEN per_msg.n > 0 THEN pg_notify(channel, 'n' || nids.id || coalesce(' ' || per_msg.refs, '')) IS NOT NULL
		END AS notified
	FROM msg JOIN nids USING (k) LEFT JOIN per_msg USING (k)
	ORDER BY msg.k;
END
$fn$;
-- +goose StatementEnd
DROP FUNCTION herald_muted(text[], text);
DROP TABLE preferences;
DROP TABLE scheduled;
DROP INDEX inbox_expires;
DROP INDEX inbox_archived;
DROP INDEX inbox_unseen;
DROP INDEX inbox_unread;
CREATE INDEX inbox_unread ON inbox (employee_id, seq) WHERE read_at IS NULL;
ALTER TABLE inbox DROP COLUMN muted, DROP COLUMN expires_at, DROP COLUMN archived_at, DROP COLUMN seen_at;
DROP INDEX notifications_expires;
DROP INDEX notifications_owner;
DROP INDEX notifications_created;
ALTER TABLE notifications DROP COLUMN owner, DROP COLUMN required, DROP COLUMN deliver_at,
    DROP COLUMN expires_at, DROP COLUMN url;
