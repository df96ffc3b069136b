package auth_test

import (
	"testing"
	"time"

	"github.com/corp/herald/auth"
)

// TestResolveRoles: who is an employee, who a service, and what each may
// do: publish (PUBLISHER_ROLES) and change the directory (DIRECTORY_ROLES)
// are separate rights (issue 14, row 10: every publisher could rewrite the
// directory, and so turn itself into any employee).
func TestResolveRoles(t *testing.T) {
	a := newAuth(t, nil, openStore(t), func(c *auth.Config) {
		c.DirectoryRoles = []string{"Directory.Write", "admin"}
	})
	tests := []struct {
		name                 string
		spec                 auth.TokenSpec
		kind                 auth.Kind
		publisher, directory bool
		code                 string // refused with this code
	}{
		{"employee", auth.TokenSpec{User: "user2"}, auth.KindEmployee, false, false, ""},
		{"admin employee (directory role admin)", auth.TokenSpec{User: "user1"}, auth.KindEmployee, true, true, ""},
		{"employee with a publisher role", auth.TokenSpec{User: "user2", Roles: []string{"service"}}, auth.KindEmployee, true, false, ""},
		{"employee with a directory role", auth.TokenSpec{User: "user2", Roles: []string{"Directory.Write"}}, auth.KindEmployee, false, true, ""},
		{"publishing service", auth.TokenSpec{User: "billing", Roles: []string{"service"}}, auth.KindService, true, false, ""},
		{"directory service", auth.TokenSpec{User: "hr-sync", Roles: []string{"Directory.Write"}}, auth.KindService, false, true, ""},
		{"service with both", auth.TokenSpec{User: "hr-sync", Roles: []string{"Directory.Write", "Notifications.Publish"}}, auth.KindService, true, true, ""},
		{"unknown user without roles", auth.TokenSpec{User: "ghost"}, 0, false, false, "unknown_employee"},
		{"unknown user with another role", auth.TokenSpec{User: "ghost", Roles: []string{"Reports.Read"}}, 0, false, false, "unknown_employee"},
		{"no user, no role", auth.TokenSpec{Name: "x"}, 0, false, false, "unknown_employee"},
	}
	for _, tt := range tests {
		tt.spec.TTL = time.Hour
		tok, err := auth.MintHS256([]byte(testSecret), tt.spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		id, err := a.Authenticate(bearer(tok))
		if tt.code != "" {
			if ae := authError(t, err); ae.Code != tt.code || ae.Status != 403 {
				t.Errorf("%s: %d %s, want 403 %s", tt.name, ae.Status, ae.Code, tt.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if id.Kind != tt.kind || id.Publisher != tt.publisher || id.Directory != tt.directory {
			t.Errorf("%s: kind %d publisher %v directory %v, want %d %v %v", tt.name, id.Kind, id.Publisher, id.Directory, tt.kind, tt.publisher, tt.directory)
		}
	}
}
