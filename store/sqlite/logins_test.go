package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
)

// TestLoginFoldingMatchesSQL: SQLite's lower(), which the login table's
// CHECK uses, folds exactly what store.NormalizeLogin folds: ASCII letters,
// nothing else (no ICU in this build).
func TestLoginFoldingMatchesSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := sqlite.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x, err := sqlx.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, s := range foldSamples() {
		var got string
		if err := x.Get(&got, `SELECT lower(?)`, s); err != nil {
			t.Fatal(err)
		}
		if want := store.NormalizeLogin(s); got != want {
			t.Errorf("lower(%q) = %q, NormalizeLogin = %q", s, got, want)
		}
	}
}

// foldSamples are every rune up to U+052F and the letters with case
// mappings that reach ASCII, each in a word with no surrounding space.
func foldSamples() []string {
	var out []string
	for r := rune('!'); r <= 0x52F; r++ {
		out = append(out, "a"+string(r)+"Z")
	}
	for _, r := range []rune{0x1E9E, 0x212A, 0x212B, 0x2126, 0xFB00, 0xFF21, 0x1E9B} {
		out = append(out, "a"+string(r)+"Z")
	}
	return out
}
