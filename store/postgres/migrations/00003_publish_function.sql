-- herald_publish_batch stores a batch of notifications and sends their NOTIFYs in
-- one statement. On its own it is also its own transaction.
--
-- It is a function so that PostgreSQL keeps its plan for the session:
-- planning this statement took about 1 ms, more than running it (0.5 ms)
-- for a unicast publish. Its plan does not depend on the arguments (the
-- planner cannot see into the CTEs anyway), so the cached generic plan
-- costs nothing in quality. Arguments: batch (a JSON array of
-- messages), created (their created_at), channel (the NOTIFY channel),
-- inline_max (the largest fan-out whose recipients travel in the payload).
--
--   - msg unpacks the batch (a JSON array) with each message's position k.
--   - pairs resolves every message's targets to (k, employee), through the
--     indexes (ids, emails, the roles' GIN index; "all" scans).
--   - recipients gathers the recipients' ids into one array, so locked
--     finds their rows through the primary key (= ANY of an array): the
--     planner cannot know how few rows a CTE holds, and joining on it made
--     it scan the whole directory for every batch. bumped then joins on
--     locked's ids, one primary-key lookup each.
--   - locked locks every recipient's row in id order. Every publish takes its
--     locks in the same order, so batches with overlapping recipients wait
--     for each other and never deadlock; the locks are held to commit, so an
--     employee's seqs commit in order. FOR NO KEY UPDATE is the lock the
--     UPDATE takes anyway: taking it first, in order, fixes the order.
--   - bumped adds to each recipient's last_seq the number of its copies in
--     the batch; seqs numbers the copies in message order from the old
--     value, so within a batch, too, seq order is message order.
--   - nids draws the notification ids; notes and ins store the
--     notifications and the copies.
--   - The result has a row per message, in order, with what the publisher's
--     answer needs. Its pg_notify calls run in that order (PostgreSQL
--     evaluates volatile output expressions after ORDER BY) and reach the
--     listeners at commit only; a message that reached nobody sends none.
--     A payload carries the notification id and, for up to inline_max recipients,
--     "employee:seq" pairs (payload.go).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION herald_publish_batch(batch json, created timestamptz, channel text, inline_max int)
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

-- +goose Down
DROP FUNCTION herald_publish_batch(json, timestamptz, text, int);
