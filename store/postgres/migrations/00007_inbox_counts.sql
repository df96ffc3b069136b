-- The counts (unread, unseen) kept per employee, as SQLite's migration
-- 00005 keeps them: counting the partial indexes inbox_unread and
-- inbox_unseen takes milliseconds once an inbox holds tens of thousands
-- of unread items.
--
-- inbox_counts holds, per employee, the copies that are unread (and
-- unseen) and not archived, expired ones included (expiry is the passing
-- of time, not a write); counts subtract the expired ones still stored,
-- found through inbox_expiring (the sweep deletes them soon after they
-- expire). Statement triggers on inbox keep the rows right in the
-- transaction of every write, one upsert or update per statement and
-- employee (transition tables). They take the counts' row locks in
-- employee order, as publishes lock employees, so writes that touch
-- several employees (a broadcast, a withdrawal, the sweep) never deadlock
-- with each other.

-- +goose Up
CREATE TABLE inbox_counts (
    employee_id bigint PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    unread      bigint NOT NULL DEFAULT 0,
    unseen      bigint NOT NULL DEFAULT 0
);
INSERT INTO inbox_counts (employee_id, unread, unseen)
    SELECT employee_id, count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL),
        count(*) FILTER (WHERE seen_at IS NULL AND archived_at IS NULL)
    FROM inbox GROUP BY employee_id;

CREATE INDEX inbox_expiring ON inbox (employee_id, expires_at) INCLUDE (read_at, seen_at, archived_at) WHERE expires_at IS NOT NULL;

-- herald_inbox_counts adds each statement's differences per employee.
-- New copies upsert (also with nothing to add, so that every employee
-- with copies has a row for later changes to update); changes and
-- deletions update the rows that exist (an employee's deletion removes
-- the row, and the cascade's deletion of the copies must not write it
-- again). Rows are locked in employee order first.

-- +goose StatementBegin
CREATE FUNCTION herald_inbox_counts() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
	emps bigint[];
	dus bigint[];
	dss bigint[];
BEGIN
	IF TG_OP = 'INSERT' THEN
		SELECT array_agg(employee_id ORDER BY employee_id), array_agg(du ORDER BY employee_id), array_agg(ds ORDER BY employee_id)
		INTO emps, dus, dss FROM (
			SELECT employee_id, count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL) AS du,
				count(*) FILTER (WHERE seen_at IS NULL AND archived_at IS NULL) AS ds
			FROM new_rows GROUP BY employee_id
		) t;
	ELSIF TG_OP = 'DELETE' THEN
		SELECT array_agg(employee_id ORDER BY employee_id), array_agg(du ORDER BY employee_id), array_agg(ds ORDER BY employee_id)
		INTO emps, dus, dss FROM (
			SELECT employee_id, -count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL) AS du,
				-count(*) FILTER (WHERE seen_at IS NULL AND archived_at IS NULL) AS ds
			FROM old_rows GROUP BY employee_id
		) t WHERE du <> 0 OR ds <> 0;
	ELSE
		SELECT array_agg(employee_id ORDER BY employee_id), array_agg(du ORDER BY employee_id), array_agg(ds ORDER BY employee_id)
		INTO emps, dus, dss FROM (
			SELECT employee_id, sum(du) AS du, sum(ds) AS ds FROM (
				SELECT employee_id, count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL) AS du,
					count(*) FILTER (WHERE seen_at IS NULL AND archived_at IS NULL) AS ds
				FROM new_rows GROUP BY employee_id
				UNION ALL
				SELECT employee_id, -count(*) FILTER (WHERE read_at IS NULL AND archived_at IS NULL),
					-count(*) FILTER (WHERE seen_at IS NULL AND archived_at IS NULL)
				FROM old_rows GROUP BY employee_id
			) d GROUP BY employee_id
		) t WHERE du <> 0 OR ds <> 0;
	END IF;
	IF emps IS NULL THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO inbox_counts AS c (employee_id, unread, unseen)
		SELECT t.e, t.u, t.s FROM unnest(emps, dus, dss) AS t(e, u, s) ORDER BY t.e
		ON CONFLICT (employee_id) DO UPDATE SET unread = c.unread + excluded.unread, unseen = c.unseen + excluded.unseen;
	ELSE
		PERFORM 1 FROM inbox_counts WHERE employee_id = ANY(emps) ORDER BY employee_id FOR NO KEY UPDATE;
		UPDATE inbox_counts c SET unread = c.unread + t.u, unseen = c.unseen + t.s
		FROM unnest(emps, dus, dss) AS t(e, u, s) WHERE c.employee_id = t.e;
	END IF;
	RETURN NULL;
END
$fn$;
-- +goose StatementEnd

CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_inbox_counts();
CREATE TRIGGER inbox_counts_update AFTER UPDATE ON inbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_inbox_counts();
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_inbox_counts();

-- +goose Down
DROP TRIGGER inbox_counts_delete ON inbox;
DROP TRIGGER inbox_counts_update ON inbox;
DROP TRIGGER inbox_counts_insert ON inbox;
DROP FUNCTION herald_inbox_counts();
DROP INDEX inbox_expiring;
DROP TABLE inbox_counts;
