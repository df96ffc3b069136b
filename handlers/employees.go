package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/corp/herald/store"
)

const (
	maxUsername = 100
	maxName     = 200
	maxRoles    = 50
)

type employeeRequest struct {
	Email    string   `json:"email"`
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
}

type employeeResponse struct {
	ID        int64    `json:"id"`
	Email     string   `json:"email,omitempty"`
	Username  string   `json:"username,omitempty"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at"`
}

func employeeID(r *http.Request) (int64, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("invalid employee id", FieldError{Field: "id", Message: "must be a positive integer"})
	}
	return id, nil
}

// putEmployee serves PUT /employees/{id}: create or replace a directory entry.
func (h *Handler) putEmployee(w http.ResponseWriter, r *http.Request) error {
	if _, err := directoryOnly(r); err != nil {
		return err
	}
	id, err := employeeID(r)
	if err != nil {
		return err
	}
	var req employeeRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	e, created, err := h.store.PutEmployee(r.Context(), store.Employee{
		ID: id, Email: req.Email, Username: req.Username, Name: req.Name, Roles: req.Roles,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, employeeResponse{
		ID: e.ID, Email: e.Email, Username: e.Username, Name: e.Name, Roles: e.Roles,
		CreatedAt: formatTime(e.CreatedAt), UpdatedAt: formatTime(e.UpdatedAt),
	})
	return nil
}

func (req *employeeRequest) validate() error {
	var errs []FieldError
	add := func(f, m string) { errs = append(errs, FieldError{Field: f, Message: m}) }
	if req.Email == "" && req.Username == "" {
		add("email", "an email or a username is required")
	}
	// Logins are taken as sent: white space anywhere (even around them) is
	// refused, not trimmed, as the API document says.
	if req.Email != "" && !validEmail(req.Email) {
		add("email", "must be an email address")
	}
	if u := req.Username; utf8.RuneCountInString(u) > maxUsername || strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || r == 0 }) >= 0 {
		add("username", fmt.Sprintf("at most %d characters, no spaces", maxUsername))
	}
	if utf8.RuneCountInString(req.Name) > maxName || strings.ContainsRune(req.Name, 0) {
		add("name", fmt.Sprintf("at most %d characters, no NUL", maxName))
	}
	if len(req.Roles) > maxRoles {
		add("roles", fmt.Sprintf("at most %d roles", maxRoles))
	}
	for i, role := range req.Roles {
		if !validRole(role) {
			add(fmt.Sprintf("roles[%d]", i), fmt.Sprintf("must be 1–%d printable characters", maxRole))
		}
	}
	if len(errs) > 0 {
		return badRequest("the employee is invalid", errs...)
	}
	return nil
}

// deleteEmployee serves DELETE /employees/{id}: the employee, their inbox and
// their open streams go.
func (h *Handler) deleteEmployee(w http.ResponseWriter, r *http.Request) error {
	if _, err := directoryOnly(r); err != nil {
		return err
	}
	id, err := employeeID(r)
	if err != nil {
		return err
	}
	if err := h.store.DeleteEmployee(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
