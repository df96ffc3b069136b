package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// The stores' shared rules, checked without a database: the stores' own
// tests (store/storetest) run them through SQLite and PostgreSQL, these pin
// the edges that a wrong comparison would move.

func TestNormalizeLogin(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"ken":                   "ken",
		" \tKen@Corp.Example\n": "ken@corp.example",
		"A":                     "a",
		"Z":                     "z",
		"aZ":                    "az",
		"az@":                   "az@",
		"@[`{":                  "@[`{", // the bytes beside A–Z are not letters
		"kEN":                   "ken",
		"\u212Aen":              "\u212Aen", // the Kelvin sign is not folded to k
		"ÄBC":                   "Äbc",
	} {
		if got := store.NormalizeLogin(in); got != want {
			t.Errorf("NormalizeLogin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogins(t *testing.T) {
	for _, c := range []struct {
		e    store.Employee
		want []string
	}{
		{store.Employee{Username: "ken", Email: "ken@corp.example"}, []string{"ken", "ken@corp.example"}},
		{store.Employee{Username: "ken@corp.example", Email: "ken@corp.example"}, []string{"ken@corp.example"}},
		{store.Employee{Email: "ken@corp.example"}, []string{"ken@corp.example"}},
		{store.Employee{Username: "ken"}, []string{"ken"}},
		{store.Employee{}, nil},
	} {
		if got := c.e.Logins(); !slices.Equal(got, c.want) {
			t.Errorf("%+v.Logins() = %q, want %q", c.e, got, c.want)
		}
	}
	e := store.Employee{Username: "ken", Email: "ken@corp.example"}
	if f := e.LoginField("ken"); f != "username" {
		t.Errorf("LoginField(username) = %q", f)
	}
	if f := e.LoginField("ken@corp.example"); f != "email" {
		t.Errorf("LoginField(email) = %q", f)
	}
}

func TestNormalizeRoles(t *testing.T) {
	got := store.NormalizeRoles([]string{" staff ", "", "admin", "staff", "  ", "Admin"})
	if want := []string{"Admin", "admin", "staff"}; !slices.Equal(got, want) {
		t.Fatalf("NormalizeRoles = %q, want %q", got, want)
	}
	if got := store.NormalizeRoles(nil); got == nil || len(got) != 0 {
		t.Fatalf("NormalizeRoles(nil) = %#v, want an empty list", got)
	}
}

func TestMissing(t *testing.T) {
	ids := store.MissingIDs([]int64{5, 1, 5, 2, 9, 2}, map[int64]bool{1: true, 9: true})
	if want := []int64{5, 2}; !slices.Equal(ids, want) {
		t.Fatalf("MissingIDs = %v, want %v (in order given, each once)", ids, want)
	}
	if ids := store.MissingIDs([]int64{1, 1}, map[int64]bool{1: true}); ids != nil {
		t.Fatalf("MissingIDs of known = %v", ids)
	}
	emails := store.MissingEmails([]string{"B@x", "a@x", "b@X ", "c@x", "A@X"}, map[string]bool{"a@x": true})
	if want := []string{"B@x", "c@x"}; !slices.Equal(emails, want) {
		t.Fatalf("MissingEmails = %q, want %q (as given, each once by folded form)", emails, want)
	}
}

func TestResultRoundTrip(t *testing.T) {
	r := store.PublishResult{NotificationID: 42, Recipients: 3, Unknown: store.Unknown{Employees: []int64{7}, Emails: []string{"x@y"}}}
	got, err := store.DecodeResult(store.EncodeResult(r))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Replayed || got.NotificationID != 42 || got.Recipients != 3 ||
		!slices.Equal(got.Unknown.Employees, []int64{7}) || !slices.Equal(got.Unknown.Emails, []string{"x@y"}) {
		t.Fatalf("round trip = %+v, want %+v replayed", got, r)
	}
	if _, err := store.DecodeResult("{"); err == nil {
		t.Fatal("a broken stored answer decoded")
	}
	// A scheduled publish keeps its deliver_at; an answer without one is
	// stored as before, and an answer stored before reads back without.
	if got, want := store.EncodeResult(r), `{"id":42,"recipients":3,"unknown_employees":[7],"unknown_emails":["x@y"]}`; got != want {
		t.Fatalf("EncodeResult = %s, want %s", got, want)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 123e6, time.UTC)
	r.DeliverAt = &at
	got, err = store.DecodeResult(store.EncodeResult(r))
	if err != nil || got.DeliverAt == nil || !got.DeliverAt.Equal(at) {
		t.Fatalf("round trip of a scheduled answer = %+v, %v; want deliver_at %v", got, err, at)
	}
	if got, err := store.DecodeResult(`{"id":42,"recipients":3}`); err != nil || got.DeliverAt != nil {
		t.Fatalf("an answer stored without deliver_at = %+v, %v; want none", got, err)
	}
}

func TestMillis(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 123_456_789, time.FixedZone("x", 3600))
	ms := store.Millis(at)
	if ms != at.UnixMilli() {
		t.Fatalf("Millis = %d", ms)
	}
	back := store.FromMillis(ms)
	if back.Location() != time.UTC || !back.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("FromMillis = %v", back)
	}
}

func TestEphemeralFor(t *testing.T) {
	now := time.Now()
	m := store.Message{Event: "e", Type: "t", Title: "ti", Body: "b", Data: json.RawMessage(`1`),
		To: store.Targets{Roles: []string{"r"}}}
	e := store.EphemeralFor(m, []int64{1, 2}, now)
	if !slices.Equal(e.Employees, []int64{1, 2}) || e.All || !slices.Equal(e.Roles, []string{"r"}) ||
		e.Event != "e" || e.Type != "t" || e.Title != "ti" || e.Body != "b" || string(e.Data) != "1" || !e.CreatedAt.Equal(now) {
		t.Fatalf("EphemeralFor = %+v", e)
	}
	m.To.All = true
	if e := store.EphemeralFor(m, []int64{1, 2}, now); e.Employees != nil || !e.All {
		t.Fatalf("EphemeralFor(all) = %+v, want no IDs", e)
	}
}

func TestMuted(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{nil, "a", false},
		{[]string{"marketing.*"}, "marketing.weekly", true},
		{[]string{"marketing.*"}, "marketing", false},
		{[]string{"marketing"}, "marketing", true},
		{[]string{"marketing"}, "marketing.weekly", false},
		{[]string{"x", "build.*"}, "build.done", true},
		{[]string{"*"}, "anything", true},
	} {
		if got := store.Muted(c.patterns, c.typ); got != c.want {
			t.Errorf("Muted(%q, %q) = %v, want %v", c.patterns, c.typ, got, c.want)
		}
	}
	if p := store.DefaultPreferences(); !p.Push || p.Muted == nil || len(p.Muted) != 0 {
		t.Errorf("DefaultPreferences = %+v", p)
	}
}

func TestInboxPage(t *testing.T) {
	if b := (store.InboxQuery{}).Bound(); b != 1<<63-1 {
		t.Errorf("Bound() without Before = %d", b)
	}
	if b := (store.InboxQuery{Before: -1}).Bound(); b != 1<<63-1 {
		t.Errorf("Bound() with Before -1 = %d", b)
	}
	if b := (store.InboxQuery{Before: 1}).Bound(); b != 1 {
		t.Errorf("Bound() with Before 1 = %d", b)
	}
	items := []store.InboxItem{{Seq: 3}, {Seq: 2}, {Seq: 1}}
	c := store.Counts{Unread: 4, Unseen: 5}
	p := store.InboxQuery{Limit: 2}.Page(items, c)
	if len(p.Items) != 2 || !p.More || p.UnreadCount != 4 || p.UnseenCount != 5 {
		t.Errorf("Page of 3 with limit 2 = %+v", p)
	}
	if p := (store.InboxQuery{Limit: 3}).Page(items, c); len(p.Items) != 3 || p.More {
		t.Errorf("Page of 3 with limit 3 = %+v, want all, no more", p)
	}
}

func TestConflictError(t *testing.T) {
	var err error = &store.ConflictError{Field: "email", Login: "k@x", Employee: 7}
	if !errors.Is(fmt.Errorf("put: %w", err), store.ErrConflict) {
		t.Error("a ConflictError is not ErrConflict")
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Error("a ConflictError is ErrNotFound")
	}
	if got, want := err.Error(), `email "k@x" already names employee 7`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
