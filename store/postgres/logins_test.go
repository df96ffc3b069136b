package postgres_test

import (
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestLoginFoldingMatchesSQL: herald_fold_login, which the login table's
// CHECK uses, folds exactly what store.NormalizeLogin folds: ASCII letters,
// nothing else, whatever the database's locale (lower() would follow it).
func TestLoginFoldingMatchesSQL(t *testing.T) {
	u := pgtest.NewDatabase(t)
	mustOpenURL(t, u)
	x, err := sqlx.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var samples []string
	for r := rune('!'); r <= 0x52F; r++ {
		samples = append(samples, "a"+string(r)+"Z")
	}
	for _, r := range []rune{0x1E9E, 0x212A, 0x212B, 0x2126, 0xFB00, 0xFF21, 0x1E9B} {
		samples = append(samples, "a"+string(r)+"Z")
	}
	var got []string
	if err := x.Select(&got, `SELECT herald_fold_login(s) FROM unnest($1::text[]) WITH ORDINALITY AS t(s, i) ORDER BY i`, pq.StringArray(samples)); err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if want := store.NormalizeLogin(s); got[i] != want {
			t.Errorf("herald_fold_login(%q) = %q, NormalizeLogin = %q", s, got[i], want)
		}
	}
}
