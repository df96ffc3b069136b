package handlers_test

import (
	"strings"
	"testing"
)

func TestPutEmployee(t *testing.T) {
	e := newEnv(t)
	svc := e.service()
	status, _, out := e.do("PUT", "/employees/42", svc, map[string]any{"email": "New@Corp.Example", "name": "New Person", "roles": []string{"staff", "admin"}})
	if status != 201 {
		t.Fatalf("create: %d %s", status, out)
	}
	var emp struct {
		ID       int64    `json:"id"`
		Email    string   `json:"email"`
		Username string   `json:"username"`
		Name     string   `json:"name"`
		Roles    []string `json:"roles"`
	}
	decodeInto(t, out, &emp)
	if emp.ID != 42 || emp.Email != "new@corp.example" || emp.Name != "New Person" || strings.Join(emp.Roles, ",") != "admin,staff" {
		t.Fatalf("created %s", out)
	}
	// The new employee can connect at once (no stale negative cache).
	e.stream("new@corp.example").Close()
	status, _, out = e.do("PUT", "/employees/42", svc, map[string]any{"email": "new@corp.example", "username": "newbie"})
	if status != 200 || !strings.Contains(string(out), `"username":"newbie"`) {
		t.Fatalf("update: %d %s", status, out)
	}
	status, _, out = e.do("PUT", "/employees/43", svc, map[string]any{"email": "NEW@corp.example"})
	if p := problem(t, out); status != 409 || p.Code != "invalid_request" {
		t.Fatalf("email taken: %d %s", status, out)
	}
	// An employee with a publisher role may manage the directory; others not.
	if status, _, out := e.do("PUT", "/employees/44", e.admin(), map[string]any{"username": "x44"}); status != 201 {
		t.Fatalf("admin put: %d %s", status, out)
	}
	if status, _, out := e.do("PUT", "/employees/45", e.token("user2"), map[string]any{"username": "x45"}); status != 403 || problem(t, out).Code != "forbidden" {
		t.Fatalf("employee put: %d %s", status, out)
	}
}

func TestPutEmployeeValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path  string
		body  any
		field string
	}{
		{"/employees/abc", map[string]any{"username": "a"}, "id"},
		{"/employees/0", map[string]any{"username": "a"}, "id"},
		{"/employees/-1", map[string]any{"username": "a"}, "id"},
		{"/employees/7", map[string]any{"name": "no login"}, "email"},
		{"/employees/7", map[string]any{"email": "bad"}, "email"},
		{"/employees/7", map[string]any{"username": "has space"}, "username"},
		{"/employees/7", map[string]any{"username": "a", "name": strings.Repeat("n", 201)}, "name"},
		{"/employees/7", map[string]any{"username": "a", "roles": []string{""}}, "roles[0]"},
		{"/employees/7", map[string]any{"username": "a", "roles": "admin"}, "roles"},
		{"/employees/7", map[string]any{"username": "a", "extra": 1}, "extra"},
	} {
		status, _, out := e.do("PUT", tc.path, e.service(), tc.body)
		if p := problem(t, out); status != 400 || p.Code != "invalid_request" || len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("PUT %s %v: %d %s, want 400 naming %s", tc.path, tc.body, status, out, tc.field)
		}
	}
	if _, err := e.Store.Employee(t.Context(), 7); err == nil {
		t.Fatal("a refused PUT created employee 7")
	}
}

func TestDeleteEmployee(t *testing.T) {
	e := newEnv(t)
	if status, _, out := e.do("DELETE", "/employees/5", e.token("user2"), nil); status != 403 {
		t.Fatalf("employee deletes: %d %s", status, out)
	}
	if status, _, out := e.do("DELETE", "/employees/5", e.service(), nil); status != 204 || len(out) != 0 {
		t.Fatalf("delete: %d %s", status, out)
	}
	status, _, out := e.do("DELETE", "/employees/5", e.service(), nil)
	if status != 404 || problem(t, out).Code != "not_found" {
		t.Fatalf("delete again: %d %s", status, out)
	}
	status, _, out = e.do("GET", "/notifications", e.token("user5"), nil)
	if status != 403 || problem(t, out).Code != "unknown_employee" {
		t.Fatalf("deleted employee's token: %d %s", status, out)
	}
}
