package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/corp/herald/store"
)

func TestPutEmployee(t *testing.T) {
	e := newEnv(t)
	dir := e.directory()
	status, _, out := e.do("PUT", "/employees/42", dir, map[string]any{"email": "New@Corp.Example", "name": "New Person", "roles": []string{"staff", "admin"}})
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
	status, _, out = e.do("PUT", "/employees/42", dir, map[string]any{"email": "new@corp.example", "username": "newbie"})
	if status != 200 || !strings.Contains(string(out), `"username":"newbie"`) {
		t.Fatalf("update: %d %s", status, out)
	}
	status, _, out = e.do("PUT", "/employees/43", dir, map[string]any{"email": "NEW@corp.example"})
	if p := problem(t, out); status != 409 || p.Code != "conflict" || len(p.Errors) != 1 || p.Errors[0].Field != "email" {
		t.Fatalf("email taken: %d %s, want 409 conflict naming email", status, out)
	}
}

// TestDirectoryNeedsDirectoryRole: changing the directory takes a
// directory role (DIRECTORY_ROLES); publishing alone does not allow it
// (issue 14, row 10: a publishing service renamed an employee to its own
// user and read that inbox).
func TestDirectoryNeedsDirectoryRole(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"directory service", e.directory(), 201},
		{"admin employee (admin is a directory role)", e.admin(), 201},
		{"employee with Directory.Write in the token", e.token("user3", "Directory.Write"), 201},
		{"publishing service", e.service(), 403},
		{"employee with a publisher role only", e.token("user2", "Notifications.Publish"), 403},
		{"employee", e.token("user2"), 403},
	}
	for i, tt := range tests {
		id := int64(60 + i)
		status, _, out := e.do(http.MethodPut, "/employees/"+itoa(id), tt.token, map[string]any{"username": "x" + itoa(id)})
		if status != tt.status || (status == 403 && problem(t, out).Code != "forbidden") {
			t.Errorf("%s: PUT %d %s, want %d", tt.name, status, out, tt.status)
		}
		if status, _, out := e.do(http.MethodDelete, "/employees/"+itoa(id), tt.token, nil); tt.status == 403 && status != 403 {
			t.Errorf("%s: DELETE %d %s, want 403", tt.name, status, out)
		}
	}
	// The attack of the issue: a publisher makes itself employee 2.
	svc := e.token("billing-service", "service")
	if status, _, out := e.do(http.MethodPut, "/employees/2", svc, map[string]any{"username": "billing-service"}); status != 403 {
		t.Fatalf("a publisher renamed employee 2: %d %s", status, out)
	}
	if status, _, out := e.do(http.MethodGet, "/notifications", svc, nil); status != 403 {
		t.Fatalf("the publisher read an inbox: %d %s", status, out)
	}
}

// TestLoginNamesOneEmployee: a login names one employee across usernames and
// emails (issue 14, row 7: PUT /employees/70 {"username":"ben@corp.example"}
// was accepted although employee 2 had that email, and a token for that
// email then opened employee 70's inbox). The 409 names the field and the
// other employee.
func TestLoginNamesOneEmployee(t *testing.T) {
	e := newEnv(t)
	status, _, out := e.do(http.MethodPut, "/employees/70", e.directory(), map[string]any{"username": "User2@corp.example"})
	p := problem(t, out)
	if status != 409 || p.Code != "conflict" || len(p.Errors) != 1 || p.Errors[0].Field != "username" ||
		!strings.Contains(p.Errors[0].Message, "employee 2") {
		t.Fatalf("username equal to employee 2's email: %d %s, want 409 conflict naming username and employee 2", status, out)
	}
	e.mustPublish("for user2", 2)
	var inbox struct {
		Notifications []struct{ Title string } `json:"notifications"`
	}
	status, _, out = e.do(http.MethodGet, "/notifications", e.token("user2@corp.example"), nil)
	decodeInto(t, out, &inbox)
	if status != 200 || len(inbox.Notifications) != 1 || inbox.Notifications[0].Title != "for user2" {
		t.Fatalf("user2's email opens %d %s, want employee 2's inbox", status, out)
	}
	// Kelvin sign: not a k (issue 14, row 8).
	if _, _, err := e.Store.PutEmployee(t.Context(), storeEmployee(80, "ken")); err != nil {
		t.Fatal(err)
	}
	status, _, out = e.do(http.MethodGet, "/notifications", e.token("\u212Aen"), nil)
	if status != 403 || problem(t, out).Code != "unknown_employee" {
		t.Fatalf("a token for \\u212Aen: %d %s, want 403 unknown_employee (ken is someone else)", status, out)
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
		status, _, out := e.do("PUT", tc.path, e.directory(), tc.body)
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
	if status, _, out := e.do("DELETE", "/employees/5", e.directory(), nil); status != 204 || len(out) != 0 {
		t.Fatalf("delete: %d %s", status, out)
	}
	status, _, out := e.do("DELETE", "/employees/5", e.directory(), nil)
	if status != 404 || problem(t, out).Code != "not_found" {
		t.Fatalf("delete again: %d %s", status, out)
	}
	status, _, out = e.do("GET", "/notifications", e.token("user5"), nil)
	if status != 403 || problem(t, out).Code != "unknown_employee" {
		t.Fatalf("deleted employee's token: %d %s", status, out)
	}
}

func storeEmployee(id int64, username string) store.Employee {
	return store.Employee{ID: id, Username: username}
}
