-- A small batch whose publishes name their recipients by employee ID
-- only, the commonest publish, is stored by a function made for it.
--
-- herald_publish_batch (00003, 00005, 00008) takes any targets: IDs,
-- emails, roles, everyone. It is one statement of about sixty plan nodes
-- whose generic plan is sized for a hundred messages and thousands of
-- recipients. For a publish to one employee the backend spent 0.6-0.85 ms
-- running it (pgbench, rolled back, so without the commit); the same
-- writes as three plain statements and a NOTIFY took 0.18-0.28 ms.
-- herald_publish_ids takes 0.41 ms for one message (0.74 ms the general
-- function, same minutes, 10,000 employees) and 0.87 ms for four (1.04).
-- It writes message by message, so for larger batches the one statement
-- is quicker (16 messages: 2.9 against 2.2 ms), and Herald sends it only
-- batches of up to four (idsBatchMax in publishsql.go), which is nearly
-- every batch at 1,000 unicast publishes/s.
--
-- herald_publish_ids writes what herald_publish_batch writes, message by
-- message in batch order: it bumps the seq of each employee named (those
-- that exist), and says which of them muted the type (unless the
-- notification is required); inserts the notification and its copies; and
-- sends the same NOTIFY (the copies' "employee:seq" pairs up to inline_max
-- live ones, none when nobody gets it live). It returns the same columns.
-- An employee named by two messages of the batch gets two seqs in batch
-- order, as before. All the recipients of the batch are locked first, in
-- employee ID order, as herald_publish_batch locks them, so two batches in
-- flight never wait on each other in a cycle. Its plans are generic, each
-- a walk of a primary key whatever the values.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION herald_publish_ids(batch json, created timestamptz, channel text, inline_max int)
RETURNS TABLE (k bigint, id bigint, recipients bigint, known_ids bigint[], known_emails text[], notified boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
	msg json;
	i bigint;
	wanted bigint[];
	typ text;
	req boolean;
	expiry timestamptz;
	got bigint[];
	seqs bigint[];
	quiet boolean[];
	nid bigint;
	live bigint;
	refs text;
BEGIN
	PERFORM 1 FROM employees e
	WHERE e.id = ANY(ARRAY(
		SELECT v::bigint FROM json_array_elements(batch) AS t(m), json_array_elements_text(t.m->'ids') AS v))
	ORDER BY e.id FOR NO KEY UPDATE;
	FOR msg, i IN SELECT t.m, t.n FROM json_array_elements(batch) WITH ORDINALITY AS t(m, n) LOOP
		wanted := ARRAY(SELECT json_array_elements_text(msg->'ids')::bigint);
		typ := msg->>'ty';
		req := coalesce((msg->>'rq')::boolean, false);
		expiry := (msg->>'ex')::timestamptz;
		WITH b AS (
			UPDATE employees e SET last_seq = e.last_seq + 1 WHERE e.id = ANY(wanted)
			RETURNING e.id AS emp, e.last_seq AS s,
				NOT req AND EXISTS (SELECT 1 FROM preferences pr WHERE pr.employee_id = e.id
					AND cardinality(pr.muted) > 0 AND herald_muted(pr.muted, typ)) AS q
		)
		SELECT coalesce(array_agg(b.emp ORDER BY b.emp), '{}'), coalesce(array_agg(b.s ORDER BY b.emp), '{}'),
			coalesce(array_agg(b.q ORDER BY b.emp), '{}')
		INTO got, seqs, quiet FROM b;
		INSERT INTO notifications AS n (type, title, body, data, publisher, recipients, created_at, url, expires_at, required, owner)
		VALUES (typ, msg->>'ti', msg->>'bo', (msg->>'da')::json, msg->>'pu', cardinality(got), created,
			msg->>'ur', expiry, req, coalesce(msg->>'ow', ''))
		RETURNING n.id INTO nid;
		live := 0;
		refs := NULL;
		IF cardinality(got) > 0 THEN
			INSERT INTO inbox (employee_id, seq, notification_id, type, expires_at, muted, read_at, seen_at)
			SELECT u.emp, u.s, nid, typ, expiry, u.q, CASE WHEN u.q THEN created END, CASE WHEN u.q THEN created END
			FROM unnest(got, seqs, quiet) AS u(emp, s, q);
			SELECT count(*) FILTER (WHERE NOT u.q),
				CASE WHEN count(*) FILTER (WHERE NOT u.q) <= inline_max
					THEN string_agg(u.emp || ':' || u.s, ',') FILTER (WHERE NOT u.q) END
			INTO live, refs FROM unnest(got, seqs, quiet) AS u(emp, s, q);
		END IF;
		k := i;
		id := nid;
		recipients := cardinality(got);
		known_ids := got;
		known_emails := '{}';
		notified := CASE WHEN live > 0 THEN pg_notify(channel, 'n' || nid || coalesce(' ' || refs, '')) IS NOT NULL END;
		RETURN NEXT;
	END LOOP;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION herald_publish_ids(json, timestamptz, text, int);
