-- A state change of some items runs on plans kept from call to call.
--
-- A plan cached by PL/pgSQL (or prepared by a client) is re-planned on
-- every call for the values given, PostgreSQL's default, whenever the plan
-- made without them looks dearer; it did for the counts (its estimate of
-- the expired rows, without the time, is a third of the inbox) and for
-- the counts trigger's statements, and herald_set_state built its change
-- with EXECUTE, planned on every call. Planning cost more than running:
-- 0.64 ms of the backend's time per change of one item, 0.30 ms now
-- (pgbench, 2,000 calls, an inbox of 100,000, synchronous_commit off to
-- leave the flush out).
--
-- So herald_set_state runs with plan_cache_mode = force_generic_plan (the
-- setting holds while it runs, for the counts trigger its statements fire
-- too) and changes listed items with two static statements: a DELETE, and
-- one UPDATE whose CASEs pick the operation's columns. Their generic plans
-- are walks of inbox_pkey by (employee_id, seq), the right plan for any
-- values. "All" keeps its statement built per call (EXECUTE is planned
-- for its own values whatever the setting): a plan cached for "all" would
-- walk the whole inbox to change one item.
--
-- A mark (read, unread, seen, archive, unarchive) commits without waiting
-- for its WAL to reach the disk (synchronous_commit off for its own
-- transaction, which this statement is): the flush took 0.6-1.4 ms here,
-- most of a mark's time. The mark is still atomic, ordered and visible to
-- every instance at once; what it gives up is that a crash of the database
-- server's machine (not of PostgreSQL alone) in the next few hundred
-- milliseconds (3 × wal_writer_delay at most) can lose it, and the item is
-- then unread again, as the employee can make it anyway. A deletion, which
-- cannot be undone, and every publish still wait for the flush. The rest
-- is 00009's.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_set_state(emp bigint, op text, t timestamptz, all_ boolean, seqs bigint[], channel text)
RETURNS TABLE (changed integer, unread bigint, unseen bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	change text;
	done bigint[];
	u bigint;
	s bigint;
	part bigint[];
BEGIN
	IF op IS NULL OR op NOT IN ('read', 'unread', 'seen', 'archive', 'unarchive', 'delete') THEN
		RAISE EXCEPTION 'unknown state operation %', op;
	END IF;
	PERFORM pg_advisory_xact_lock(emp);
	IF op <> 'delete' THEN
		-- A mark is answered before its commit reaches the disk (see above).
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;
	IF NOT all_ AND op = 'delete' THEN
		WITH c AS (
			DELETE FROM inbox WHERE employee_id = emp AND seq = ANY(seqs) AND (expires_at IS NULL OR expires_at > t)
			RETURNING seq
		) SELECT array_agg(seq ORDER BY seq) INTO done FROM c;
	ELSIF NOT all_ THEN
		WITH c AS (
			UPDATE inbox SET
				read_at = CASE op WHEN 'read' THEN t WHEN 'archive' THEN coalesce(read_at, t) WHEN 'unread' THEN NULL ELSE read_at END,
				seen_at = CASE WHEN op IN ('read', 'seen', 'archive') THEN coalesce(seen_at, t) ELSE seen_at END,
				archived_at = CASE op WHEN 'archive' THEN t WHEN 'unarchive' THEN NULL ELSE archived_at END
			WHERE employee_id = emp AND seq = ANY(seqs) AND (expires_at IS NULL OR expires_at > t)
				AND CASE op WHEN 'read' THEN read_at IS NULL WHEN 'unread' THEN read_at IS NOT NULL
					WHEN 'seen' THEN seen_at IS NULL WHEN 'archive' THEN archived_at IS NULL
					ELSE archived_at IS NOT NULL END
			RETURNING seq
		) SELECT array_agg(seq ORDER BY seq) INTO done FROM c;
	ELSE
		change := CASE op
			WHEN 'read' THEN 'UPDATE inbox SET read_at = $2, seen_at = coalesce(seen_at, $2) WHERE read_at IS NULL'
			WHEN 'unread' THEN 'UPDATE inbox SET read_at = NULL WHERE read_at IS NOT NULL'
			WHEN 'seen' THEN 'UPDATE inbox SET seen_at = $2 WHERE seen_at IS NULL'
			WHEN 'archive' THEN 'UPDATE inbox SET archived_at = $2, read_at = coalesce(read_at, $2), seen_at = coalesce(seen_at, $2) WHERE archived_at IS NULL'
			WHEN 'unarchive' THEN 'UPDATE inbox SET archived_at = NULL WHERE archived_at IS NOT NULL'
			WHEN 'delete' THEN 'DELETE FROM inbox WHERE true'
		END;
		EXECUTE 'WITH c AS (' || change || ' AND employee_id = $1 AND (expires_at IS NULL OR expires_at > $2)'
			|| CASE WHEN op = 'read' THEN ' AND seq = ANY(ARRAY(SELECT seq FROM inbox WHERE employee_id = $1 AND read_at IS NULL AND archived_at IS NULL'
					|| ' UNION ALL SELECT seq FROM inbox WHERE employee_id = $1 AND archived_at IS NOT NULL AND read_at IS NULL))'
				WHEN op = 'seen' THEN ' AND seq = ANY(ARRAY(SELECT seq FROM inbox WHERE employee_id = $1 AND seen_at IS NULL AND archived_at IS NULL'
					|| ' UNION ALL SELECT seq FROM inbox WHERE employee_id = $1 AND archived_at IS NOT NULL AND seen_at IS NULL))'
				ELSE '' END
			|| ' RETURNING seq) SELECT array_agg(seq ORDER BY seq) FROM c'
			INTO done USING emp, t;
	END IF;
	SELECT coalesce((SELECT c.unread FROM inbox_counts c WHERE c.employee_id = emp), 0)
			- (SELECT count(*) FROM inbox i WHERE i.employee_id = emp AND i.expires_at <= t AND i.read_at IS NULL AND i.archived_at IS NULL),
		coalesce((SELECT c.unseen FROM inbox_counts c WHERE c.employee_id = emp), 0)
			- (SELECT count(*) FROM inbox i WHERE i.employee_id = emp AND i.expires_at <= t AND i.seen_at IS NULL AND i.archived_at IS NULL)
		INTO u, s;
	IF done IS NOT NULL THEN
		IF all_ THEN
			PERFORM pg_notify(channel, 's' || json_build_object('e', emp, 'o', op, 'a', true, 'u', u, 'n', s)::text);
		ELSE
			FOR part IN SELECT array_agg(x ORDER BY i) FROM unnest(done) WITH ORDINALITY AS d(x, i) GROUP BY (i - 1) / 300 ORDER BY (i - 1) / 300 LOOP
				PERFORM pg_notify(channel, 's' || json_build_object('e', emp, 'o', op, 's', part, 'u', u, 'n', s)::text);
			END LOOP;
		END IF;
	END IF;
	RETURN QUERY SELECT coalesce(cardinality(done), 0), u, s;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
-- 00009's function (CREATE OR REPLACE drops the setting too).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_set_state(emp bigint, op text, t timestamptz, all_ boolean, seqs bigint[], channel text)
RETURNS TABLE (changed integer, unread bigint, unseen bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	change text;
	done bigint[];
	u bigint;
	s bigint;
	part bigint[];
BEGIN
	change := CASE op
		WHEN 'read' THEN 'UPDATE inbox SET read_at = $2, seen_at = coalesce(seen_at, $2) WHERE read_at IS NULL'
		WHEN 'unread' THEN 'UPDATE inbox SET read_at = NULL WHERE read_at IS NOT NULL'
		WHEN 'seen' THEN 'UPDATE inbox SET seen_at = $2 WHERE seen_at IS NULL'
		WHEN 'archive' THEN 'UPDATE inbox SET archived_at = $2, read_at = coalesce(read_at, $2), seen_at = coalesce(seen_at, $2) WHERE archived_at IS NULL'
		WHEN 'unarchive' THEN 'UPDATE inbox SET archived_at = NULL WHERE archived_at IS NOT NULL'
		WHEN 'delete' THEN 'DELETE FROM inbox WHERE true'
	END;
	IF change IS NULL THEN
		RAISE EXCEPTION 'unknown state operation %', op;
	END IF;
	PERFORM pg_advisory_xact_lock(emp);
	EXECUTE 'WITH c AS (' || change || ' AND employee_id = $1 AND (expires_at IS NULL OR expires_at > $2)'
		|| CASE WHEN NOT all_ THEN ' AND seq = ANY($3)'
			WHEN op = 'read' THEN ' AND seq = ANY(ARRAY(SELECT seq FROM inbox WHERE employee_id = $1 AND read_at IS NULL AND archived_at IS NULL'
				|| ' UNION ALL SELECT seq FROM inbox WHERE employee_id = $1 AND archived_at IS NOT NULL AND read_at IS NULL))'
			WHEN op = 'seen' THEN ' AND seq = ANY(ARRAY(SELECT seq FROM inbox WHERE employee_id = $1 AND seen_at IS NULL AND archived_at IS NULL'
				|| ' UNION ALL SELECT seq FROM inbox WHERE employee_id = $1 AND archived_at IS NOT NULL AND seen_at IS NULL))'
			ELSE '' END
		|| ' RETURNING seq) SELECT array_agg(seq ORDER BY seq) FROM c'
		INTO done USING emp, t, seqs;
	SELECT coalesce((SELECT c.unread FROM inbox_counts c WHERE c.employee_id = emp), 0)
			- (SELECT count(*) FROM inbox i WHERE i.employee_id = emp AND i.expires_at <= t AND i.read_at IS NULL AND i.archived_at IS NULL),
		coalesce((SELECT c.unseen FROM inbox_counts c WHERE c.employee_id = emp), 0)
			- (SELECT count(*) FROM inbox i WHERE i.employee_id = emp AND i.expires_at <= t AND i.seen_at IS NULL AND i.archived_at IS NULL)
		INTO u, s;
	IF done IS NOT NULL THEN
		IF all_ THEN
			PERFORM pg_notify(channel, 's' || json_build_object('e', emp, 'o', op, 'a', true, 'u', u, 'n', s)::text);
		ELSE
			FOR part IN SELECT array_agg(x ORDER BY i) FROM unnest(done) WITH ORDINALITY AS d(x, i) GROUP BY (i - 1) / 300 ORDER BY (i - 1) / 300 LOOP
				PERFORM pg_notify(channel, 's' || json_build_object('e', emp, 'o', op, 's', part, 'u', u, 'n', s)::text);
			END LOOP;
		END IF;
	END IF;
	RETURN QUERY SELECT coalesce(cardinality(done), 0), u, s;
END
$fn$;
-- +goose StatementEnd
