package handlers

import (
	"errors"

	"github.com/corp/herald/store"
)

// CheckEmployee applies the rules of PUT /employees/{id} to e, for tools
// that write to the store directly (herald employees), so they refuse what
// the API refuses. It returns one FieldError per broken rule.
func CheckEmployee(e store.Employee) []FieldError {
	req := employeeRequest{Email: e.Email, Username: e.Username, Name: e.Name, Roles: e.Roles}
	var he *httpError
	if err := req.validate(); errors.As(err, &he) {
		return he.fields
	}
	return nil
}
