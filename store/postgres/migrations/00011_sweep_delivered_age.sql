-- Retention ages a notification from when its copies appeared: a scheduled
-- notification's from its deliver_at, any other's from its created_at.
-- Aged by created_at alone (00010), a notification scheduled further ahead
-- than RETENTION was swept within a minute of its delivery.
--
-- herald_sweep still walks notifications_created, the oldest first, and
-- skips the scheduled notifications delivered after `older` as it walks:
-- they do not count against the chunk's lim, so a chunk whose oldest
-- notifications are all skipped still reaches the deletable ones past
-- them, and a sweep still ends at the first chunk that deletes less than
-- lim. Scheduled notifications are few, so the rows skipped are few (each
-- chunk walks past those created before `older`, until they are due).
-- A scheduled notification's deliver_at is after its created_at, so the
-- walk by created_at leaves out none whose deliver_at is before `older`.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_sweep(lock_key bigint, older timestamptz, now_ timestamptz, keys_older timestamptz, lim integer)
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
			AND (o.deliver_at IS NULL OR o.deliver_at < older)
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
-- 00010's function.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION herald_sweep(lock_key bigint, older timestamptz, now_ timestamptz, keys_older timestamptz, lim integer)
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

