package postgres_test

import (
	"context"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
	"github.com/corp/herald/store/storetest"
)

// TestEphemeralResolveFails: an ephemeral publish whose targets cannot be
// resolved (the directory query fails: here its table is gone) reports
// the failure instead of an empty success.
func TestEphemeralResolveFails(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	db := mustOpenURL(t, u)
	storetest.Seed(t, db, 1, 0)
	if _, err := rawDB(t, u).Exec(`ALTER TABLE employees RENAME TO employees_away`); err != nil {
		t.Fatal(err)
	}
	m := store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: "e"}
	if res, err := db.PublishEphemeral(context.Background(), m, nil); err == nil {
		t.Fatalf("PublishEphemeral with the directory unreadable = %+v, no error; want the failure", res)
	}
}
