-- One chunk of the retention sweep in one statement: herald_sweep takes
-- the sweep's advisory lock (only one instance sweeps at a time; the others
-- get no row back), deletes up to lim rows of each kind, and reports the
-- rows deleted and the time the database spent deleting them (busy_us,
-- microseconds, measured inside the function, so without the round trip
-- or the commit).
--
-- The sweep sizes its next chunk by that time (store/jobs.go). Measured
-- from the client, a chunk of six round trips (begin, lock, four deletes,
-- commit) on a loaded server took 10-15 ms even for ten rows: most of it
-- waiting for the backend to be scheduled, not work. The sweep then shrank
-- its chunks to the least and rested three times that long, and deleted
-- about 400 rows a second while 1,000 publishes a second went on.
--
-- What a chunk deletes: copies that expired; the copies of the lim oldest
-- notifications older than `older` (in notifications_created order, each
-- looked up through inbox_notification); those same notifications once
-- they have no copies; of the lim notifications that expired first, those
-- without copies; idempotency keys created before keys_older. Scheduled
-- notifications are kept until delivered.
--
-- Plans: the function runs with plan_cache_mode = force_generic_plan, so
-- each statement is planned once per connection, without its arguments. A
-- custom plan costs 1.5-2 ms of planning per statement on a table whose
-- oldest rows were just deleted (the planner reads the index's ends past
-- the dead entries), more than the deletes themselves. The statements are
-- written so that the plan without arguments is the right one: the chunk's
-- notifications are first read into an array (by an index, in order), and
-- the later statements look them up by id; asked as one join, a generic
-- plan (which must guess the LIMIT) hashed the whole inbox to find the
-- notifications without copies (0.4 s a chunk).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION herald_sweep(lock_key bigint, older timestamptz, now_ timestamptz, keys_older timestamptz, lim integer)
RETURNS TABLE (swept bigint, busy_us bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	started timestamptz := clock_timestamp();
	ids bigint[];
	n bigint;
BEGIN
	IF NOT pg_try_advisory_xact_lock(lock_key) THEN
		RETURN;
	END IF;
	swept := 0;
	DELETE FROM inbox WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM inbox WHERE expires_at <= now_ LIMIT lim));
	GET DIAGNOSTICS n = ROW_COUNT;
	swept := swept + n;
	IF older IS NOT NULL THEN
		ids := ARRAY(SELECT o.id FROM notifications o WHERE o.created_at < older
			AND NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.notification_id = o.id)
			ORDER BY o.created_at LIMIT lim);
		DELETE FROM inbox WHERE ctid = ANY(ARRAY(
			SELECT c.ctid FROM unnest(ids) AS o(id)
			CROSS JOIN LATERAL (SELECT ctid FROM inbox WHERE notification_id = o.id LIMIT lim) c LIMIT lim));
		GET DIAGNOSTICS n = ROW_COUNT;
		swept := swept + n;
		DELETE FROM notifications o WHERE o.id = ANY(ids)
			AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notification_id = o.id);
		GET DIAGNOSTICS n = ROW_COUNT;
		swept := swept + n;
	END IF;
	ids := ARRAY(SELECT o.id FROM notifications o WHERE o.expires_at <= now_
		AND NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.notification_id = o.id)
		ORDER BY o.expires_at LIMIT lim);
	DELETE FROM notifications o WHERE o.id = ANY(ids)
		AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.notification_id = o.id);
	GET DIAGNOSTICS n = ROW_COUNT;
	swept := swept + n;
	DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM idempotency_keys WHERE created_at <= keys_older LIMIT lim));
	GET DIAGNOSTICS n = ROW_COUNT;
	swept := swept + n;
	busy_us := (extract(epoch FROM clock_timestamp() - started) * 1000000)::bigint;
	RETURN NEXT;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION herald_sweep(bigint, timestamptz, timestamptz, timestamptz, integer);
