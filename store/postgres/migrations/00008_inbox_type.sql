-- The notification's type on each copy (inbox row), as SQLite's
-- migration 00006 keeps it, so that type filters (GET /notifications?type=T
-- or type=prefix.*) read the copies only and join notifications for the
-- page's items alone: with the type on notifications, a page of a type one
-- copy in ten has joined ten rows of notifications per item to find it.
--
-- A type filter, exact or a prefix, walks the copies newest first and
-- checks the type on each. There is no index on (employee_id, type, seq),
-- as on SQLite (00006): it made every copy of a publish one more index
-- insert, to speed up only the filter on a type rare in an inbox.
--
-- herald_publish_batch (00005) is replaced to write the type with each
-- copy; scheduled delivery writes it too (center.go). The column keeps its
-- default '' so that an instance still running the previous code during a
-- rolling upgrade can deliver scheduled copies (their type filters miss
-- those copies, nothing fails).
--
-- The backfill rewrites every copy with the counts trigger disabled: it
-- changes no state, and the statement trigger would only hold every row
-- twice (transition tables) to find that out.

-- +goose Up
ALTER TABLE inbox ADD COLUMN type text NOT NULL DEFAULT '';
ALTER TABLE inbox DISABLE TRIGGER inbox_counts_update;
UPDATE inbox i SET type = n.type FROM notifications n WHERE n.id = i.notification_id;
ALTER TABLE inbox ENABLE TRIGGER inbox_counts_update;

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
		INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at, muted, read_at, seen_at)
		SELECT seqs.id, seqs.seq, nids.id, msg.type, msg.expires_at, seqs.muted,
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
ALTER TABLE inbox DROP COLUMN type;
