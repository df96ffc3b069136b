package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/corp/herald/store"
)

// testLoginsAcrossColumns: a login names at most one employee, whether it is
// someone's username or someone's email (issue 14, row 7: a username equal
// to another employee's email let a token for that email open the wrong
// inbox). The refusal names the field and the other employee.
func testLoginsAcrossColumns(t *testing.T, h *Harness) {
	st := h.Store
	Seed(t, st, 2, 0) // user1 / user1@corp.example, user2 / user2@corp.example
	tests := []struct {
		name  string
		put   store.Employee
		field string
		other int64
	}{
		{"username is another's email", store.Employee{ID: 70, Username: "User2@Corp.Example"}, "username", 2},
		{"email is another's username", store.Employee{ID: 70, Email: "USER1"}, "email", 1},
		{"email is another's email", store.Employee{ID: 70, Email: "user1@corp.example", Username: "seventy"}, "email", 1},
		{"username is another's username", store.Employee{ID: 70, Username: "user2", Email: "seventy@corp.example"}, "username", 2},
		{"an existing employee takes another's email", store.Employee{ID: 1, Username: "user2@corp.example"}, "username", 2},
	}
	for _, tt := range tests {
		_, _, err := st.PutEmployee(ctx(), tt.put)
		var ce *store.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("%s: PutEmployee error = %v, want a *store.ConflictError", tt.name, err)
		}
		if ce.Field != tt.field || ce.Employee != tt.other {
			t.Errorf("%s: conflict on %s with employee %d, want %s with employee %d", tt.name, ce.Field, ce.Employee, tt.field, tt.other)
		}
	}
	if _, err := st.Employee(ctx(), 70); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused put created employee 70 (err=%v)", err)
	}
	for login, want := range map[string]int64{"user1": 1, "user1@corp.example": 1, "user2@corp.example": 2} {
		if e, err := st.EmployeeByLogin(ctx(), login); err != nil || e.ID != want {
			t.Errorf("EmployeeByLogin(%q) = %d, %v; want employee %d unchanged", login, e.ID, err, want)
		}
	}
	// One employee may use the same login as username and email.
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 2, Username: "user2@corp.example", Email: "user2@corp.example"}); err != nil {
		t.Fatalf("username equal to one's own email: %v", err)
	}
	// A login given up is free for someone else, and no longer names its
	// former owner.
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 1, Username: "uno", Email: "uno@corp.example"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 3, Username: "user1", Email: "user1@corp.example"}); err != nil {
		t.Fatalf("taking logins employee 1 gave up: %v", err)
	}
	if e, err := st.EmployeeByLogin(ctx(), "user1@corp.example"); err != nil || e.ID != 3 {
		t.Errorf("EmployeeByLogin(user1@corp.example) = %d, %v; want 3", e.ID, err)
	}
	if err := st.DeleteEmployee(ctx(), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EmployeeByLogin(ctx(), "user1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EmployeeByLogin(user1) after delete: %v, want ErrNotFound", err)
	}
	if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: 4, Email: "user1"}); err != nil {
		t.Errorf("a deleted employee's login is free again: %v", err)
	}
}

// testLoginFolding: logins compare by ASCII-only case folding, in Go and in
// SQL alike (issue 14, row 8: Unicode folding turned the Kelvin sign into
// "k", so "\u212Aen" opened ken's inbox).
func testLoginFolding(t *testing.T, h *Harness) {
	st := h.Store
	// Each of these is a login of its own: Unicode folding or
	// normalization would make it equal to an ASCII login or to another.
	logins := []string{
		"ken", "\u212Aen", // KELVIN SIGN
		"sam", "\u017Fam", // LATIN SMALL LETTER LONG S
		"ida", "\u0130da", "\u0131da", // I WITH DOT ABOVE, DOTLESS I
		"\u00C5sa", "\u00E5sa", "\u212Bsa", // A WITH RING, a with ring, ANGSTROM SIGN
		"\u01C5ok", "\u01C4ok", "\u01C6ok", // Dz with caron: title, upper, lower
		"stra\u00DFe", "strasse", "stra\u1E9Ee", // sharp s, capital sharp s
		"\uFB00e", "ffe", // LATIN SMALL LIGATURE FF
		"\u00C9lan", "\u00E9lan", "e\u0301lan", // É, é, e + combining acute
		"ana\u00A0", "\u00A0ana", "ana", // no-break space is no white space to trim
	}
	for i, l := range logins {
		if _, _, err := st.PutEmployee(ctx(), store.Employee{ID: int64(100 + i), Username: l}); err != nil {
			t.Fatalf("PutEmployee(username %q): %v (each is a distinct login)", l, err)
		}
	}
	for i, l := range logins {
		want := int64(100 + i)
		for _, variant := range []string{l, asciiUpper(l), " " + l + "\t"} {
			e, err := st.EmployeeByLogin(ctx(), variant)
			if err != nil || e.ID != want {
				t.Errorf("EmployeeByLogin(%q) = %d, %v; want %d (%q)", variant, e.ID, err, want, l)
			}
		}
	}
	e, err := st.Employee(ctx(), 100+1)
	if err != nil || e.Username != "\u212Aen" {
		t.Errorf("stored username %q, want the Kelvin sign kept: %v", e.Username, err)
	}
	// Mixed case outside ASCII is stored as given; its ASCII letters fold.
	saved, _, err := st.PutEmployee(ctx(), store.Employee{ID: 200, Email: "\u00C0NA@Corp.Example"})
	if err != nil || saved.Email != "\u00C0na@corp.example" {
		t.Fatalf("PutEmployee(\u00C0NA@Corp.Example) stored %q, %v; want \u00C0na@corp.example", saved.Email, err)
	}
	if _, err := st.EmployeeByLogin(ctx(), "\u00E0na@corp.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("\u00E0na matched \u00C0na: %v", err)
	}
}

// asciiUpper upper-cases the ASCII letters of s only.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// testConcurrentLoginClaims: employees saved at the same time with the same
// login: exactly one gets it, the others are refused naming the winner.
func testConcurrentLoginClaims(t *testing.T, h *Harness) {
	st := h.Store
	const rounds, racers = 10, 4
	for r := range rounds {
		login := fmt.Sprintf("race%d@corp.example", r)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []int64
			refused []*store.ConflictError
		)
		for i := range racers {
			id := int64(1000 + r*racers + i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Half of them claim it as a username, half as an email.
				e := store.Employee{ID: id, Email: login}
				if i%2 == 1 {
					e = store.Employee{ID: id, Username: login}
				}
				_, _, err := st.PutEmployee(ctx(), e)
				mu.Lock()
				defer mu.Unlock()
				var ce *store.ConflictError
				switch {
				case err == nil:
					winners = append(winners, id)
				case errors.As(err, &ce):
					refused = append(refused, ce)
				default:
					t.Errorf("PutEmployee(%d, %s): %v", id, login, err)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d employees got %s, want exactly 1", r, len(winners), login)
		}
		for _, ce := range refused {
			if ce.Employee != winners[0] {
				t.Errorf("round %d: refusal names employee %d, want the winner %d", r, ce.Employee, winners[0])
			}
		}
		if e, err := st.EmployeeByLogin(ctx(), login); err != nil || e.ID != winners[0] {
			t.Errorf("round %d: %s names %d (%v), want %d", r, login, e.ID, err, winners[0])
		}
	}
}
