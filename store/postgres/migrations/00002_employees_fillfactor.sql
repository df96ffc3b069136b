-- Every publish bumps employees.last_seq of its recipients. With full pages
-- that update cannot be HOT (heap-only): each bump then adds entries to
-- every index of the table, the GIN index on roles included (about 1 ms per
-- unicast publish). Half-empty pages keep the bumps HOT. The directory is
-- small, so the space costs little. Existing rows gain room as old versions
-- are pruned.

-- +goose Up
ALTER TABLE employees SET (fillfactor = 50);

-- +goose Down
ALTER TABLE employees RESET (fillfactor);
