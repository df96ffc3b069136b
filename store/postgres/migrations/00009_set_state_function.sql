-- A state change (read, unread, seen, archive, unarchive, delete of some
-- copies of one employee, or of all) in one statement: herald_set_state
-- takes the employee's state lock, changes the copies, reads the counts
-- and sends the state event (NOTIFY, delivered at commit), so a change is
-- one round trip and its own transaction instead of six round trips (begin,
-- lock, change, counts, notify, commit): on a loaded server each round trip
-- waits for the backend to be scheduled.
--
-- The lock (pg_advisory_xact_lock on the employee's ID, as Withdraw takes
-- it) makes one employee's changes compute their counts one after the
-- other, so the last change's counts are the current ones. The counts are
-- those of countsSQL (center.go). The event is what statePayloads
-- (payload.go) encodes: "s" and a stateWire object, with at most
-- stateSeqsPerPayload (300) seqs per NOTIFY, each part with the counts.
-- The change's statement is built per call (EXECUTE) so that it is planned
-- for its own arguments: a plan cached for "all" would walk the whole
-- inbox to change one item. "All" of read and seen is narrowed to the
-- items of the partial indexes (inbox_unread or inbox_unseen, and
-- inbox_archived: archived items may be unread again), as SQLite's allSQL
-- does: otherwise it walks every item of the employee, 100,000 to mark
-- 1,000 read. (Unarchive finds inbox_archived by itself.)

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION herald_set_state(emp bigint, op text, t timestamptz, all_ boolean, seqs bigint[], channel text)
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

-- +goose Down
DROP FUNCTION herald_set_state(bigint, text, timestamptz, boolean, bigint[], text);
