package postgres

import "context"

// PlanCounts returns, for each statement prepared on the pool's
// connection whose text contains one of the given fragments, how many
// times PostgreSQL ran it on a generic plan and on a custom one
// (pg_prepared_statements). It is meant for a DB of one connection
// (WithMaxConns(1)): the view shows the statements of its own session.
func (db *DB) PlanCounts(ctx context.Context) (map[string][2]int64, error) {
	var rows []struct {
		Statement string `db:"statement"`
		Generic   int64  `db:"generic_plans"`
		Custom    int64  `db:"custom_plans"`
	}
	err := db.x.SelectContext(ctx, &rows, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`)
	out := make(map[string][2]int64, len(rows))
	for _, r := range rows {
		out[r.Statement] = [2]int64{r.Generic, r.Custom}
	}
	return out, err
}

// SetStateSQL and CountsSQL are the texts of those prepared statements.
const SetStateSQL = setStateSQL

var CountsSQL = countsSQL
