package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/corp/herald/handlers"
	"github.com/corp/herald/store"
)

// The employees commands write to DATABASE_URL directly. A running instance
// on PostgreSQL hears of each change at once; on SQLite the command and the
// server share the file, and the server's lookup cache (30 s) decides.

func employeesCommand() *command {
	c := &command{
		name: "employees", summary: "manage the directory in DATABASE_URL (subcommands below)",
		usage: "herald employees list|put|delete|import [flags]",
		about: `Reads and changes Herald's employee directory directly in DATABASE_URL.
The HTTP API (PUT and DELETE /employees/{id}) does the same over the network.`,
		example: `herald employees put --id 12 --email ana@corp.example --username ana --roles admin
herald employees import people.csv
herald employees list`,
		run: employeesCmd,
	}
	c.subs = []*command{
		{name: "employees list", summary: "list the directory", run: employeesList,
			usage:   "herald employees list [--format table|csv|json]",
			about:   "Lists every employee by ID. The csv and json formats are what employees import reads.",
			example: "herald employees list\nherald employees list --format csv > people.csv"},
		{name: "employees put", summary: "create or replace one employee", run: employeesPut,
			usage: "herald employees put --id ID (--email ADDR | --username NAME) [--name TEXT] [--roles A,B]",
			about: `Creates the employee, or replaces every field of an existing one (a field left
out is cleared). Emails and usernames are unique across the directory.`,
			example: "herald employees put --id 12 --email ana@corp.example --username ana --name 'Ana Ruiz' --roles admin,staff"},
		{name: "employees delete", summary: "delete one employee, their inbox and streams", run: employeesDelete,
			usage: "herald employees delete --id ID", example: "herald employees delete --id 12"},
		{name: "employees import", summary: "create or replace employees from CSV or JSON", run: employeesImport,
			usage: "herald employees import [--format auto|csv|json] FILE|-",
			about: `Creates or replaces each employee of FILE (or of standard input, "-"). Every
record is read and checked first: a bad one stops the import before anything
is written, and the message names its line (CSV) or number (JSON). Running an
import again is safe: it replaces the same employees.

CSV: a header row, then one employee per row. Columns, in any order:
  id        required, a positive whole number (your HR system's ID)
  email     an email address        } at least one of the two
  username  a login name            }
  name      shown to people
  roles     roles separated by ';'

  id,email,username,name,roles
  12,ana@corp.example,ana,Ana Ruiz,admin;staff
  15,ben@corp.example,ben,Ben Okafor,

JSON: an array of objects (or one object per line), with the same fields;
roles is an array:

  [{"id":12,"email":"ana@corp.example","username":"ana","name":"Ana Ruiz","roles":["admin","staff"]},
   {"id":15,"email":"ben@corp.example","username":"ben","name":"Ben Okafor"}]

--format auto reads .json and .jsonl files, and input starting with [ or {,
as JSON; anything else as CSV.`,
			example: "herald employees import people.csv\nherald employees list --format json | herald employees import -"},
	}
	return c
}

func employeesCmd(ctx context.Context, c *command, e env, args []string) error {
	if len(args) > 0 {
		for _, s := range c.subs {
			if s.name == "employees "+args[0] {
				return s.exec(ctx, e, args[1:])
			}
		}
	}
	fs := c.flagSet()
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	c.printHelp(e.stderr, fs)
	if len(args) == 0 {
		return errors.New("employees: name a subcommand: list, put, delete or import")
	}
	return fmt.Errorf("employees: unknown subcommand %q: list, put, delete or import", args[0])
}

// directoryFlags parses c's flags (define adds c's own) and returns
// DATABASE_URL and the arguments after the flags.
func directoryFlags(c *command, e env, args []string, define func(fs *flag.FlagSet)) (string, []string, error) {
	fs := c.flagSet()
	define(fs)
	cfg, err := c.parseConfig(e, fs, args)
	if err != nil {
		return "", nil, err
	}
	return cfg.DatabaseURL, fs.Args(), nil
}

func employeesList(ctx context.Context, c *command, e env, args []string) error {
	var format string
	dsn, rest, err := directoryFlags(c, e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "table", "output `FORMAT`: table, csv or json (one object per line)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("employees list: unexpected argument %q", rest[0])
	}
	w, err := newEmployeeWriter(e.stdout, format)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, dsn, nil, false)
	if err != nil {
		return err
	}
	defer st.Close()
	for after := int64(0); ; {
		page, err := st.Employees(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("employees list: %w", err)
		}
		for _, emp := range page {
			w.write(emp)
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	return w.flush()
}

func employeesPut(ctx context.Context, c *command, e env, args []string) error {
	var (
		emp   store.Employee
		roles listFlag
	)
	dsn, rest, err := directoryFlags(c, e, args, func(fs *flag.FlagSet) {
		fs.Int64Var(&emp.ID, "id", 0, "the employee's `ID` (from your HR system); required")
		fs.StringVar(&emp.Email, "email", "", "the employee's email `ADDRESS`")
		fs.StringVar(&emp.Username, "username", "", "the employee's login `NAME`")
		fs.StringVar(&emp.Name, "name", "", "the `NAME` shown to people")
		fs.Var(&roles, "roles", "comma-separated `ROLES`")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("employees put: unexpected argument %q (a value with spaces needs quotes)", rest[0])
	}
	emp.Roles = roles
	if emp.ID <= 0 {
		return errors.New("employees put: --id is required: a positive whole number")
	}
	st, err := openStore(ctx, dsn, nil, false)
	if err != nil {
		return err
	}
	defer st.Close()
	saved, created, err := putEmployee(ctx, st, emp)
	if err != nil {
		return fmt.Errorf("employees put: %w", err)
	}
	verb := "updated"
	if created {
		verb = "created"
	}
	fmt.Fprintf(e.stdout, "%s employee %d (%s)\n", verb, saved.ID, firstNonEmpty(saved.Username, saved.Email))
	return nil
}

func employeesDelete(ctx context.Context, c *command, e env, args []string) error {
	var id int64
	dsn, rest, err := directoryFlags(c, e, args, func(fs *flag.FlagSet) {
		fs.Int64Var(&id, "id", 0, "the employee's `ID`; required")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("employees delete: unexpected argument %q", rest[0])
	}
	if id <= 0 {
		return errors.New("employees delete: --id is required: a positive whole number")
	}
	st, err := openStore(ctx, dsn, nil, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteEmployee(ctx, id); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("employees delete: there is no employee %d", id)
	} else if err != nil {
		return fmt.Errorf("employees delete: %w", err)
	}
	fmt.Fprintf(e.stdout, "deleted employee %d\n", id)
	return nil
}

// putEmployee checks emp as the HTTP API would, then saves it; a conflict
// names the field and the employee that holds the value.
func putEmployee(ctx context.Context, st store.Store, emp store.Employee) (store.Employee, bool, error) {
	if problems := handlers.CheckEmployee(emp); len(problems) > 0 {
		var msgs []string
		for _, p := range problems {
			msgs = append(msgs, p.Field+": "+p.Message)
		}
		return store.Employee{}, false, fmt.Errorf("employee %d is invalid: %s", emp.ID, strings.Join(msgs, "; "))
	}
	saved, created, err := st.PutEmployee(ctx, emp)
	if errors.Is(err, store.ErrConflict) {
		return saved, created, explainConflict(ctx, st, emp)
	}
	return saved, created, err
}

// explainConflict finds who already holds emp's email or username.
func explainConflict(ctx context.Context, st store.Store, emp store.Employee) error {
	for _, f := range []struct{ field, value string }{{"email", emp.Email}, {"username", emp.Username}} {
		if f.value == "" {
			continue
		}
		other, err := st.EmployeeByLogin(ctx, f.value)
		if err != nil || other.ID == emp.ID {
			continue
		}
		column := "username"
		if strings.EqualFold(other.Email, f.value) {
			column = "email"
		}
		return fmt.Errorf("%s %q is already employee %d's %s (%s): change or delete employee %d first, or pick another %s",
			f.field, f.value, other.ID, column, firstNonEmpty(other.Name, other.Username, other.Email), other.ID, f.field)
	}
	return fmt.Errorf("employee %d: the email or username belongs to another employee", emp.ID)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// employeeRecord is an employee as import reads it and list --format json
// writes it.
type employeeRecord struct {
	ID       int64    `json:"id"`
	Email    string   `json:"email,omitempty"`
	Username string   `json:"username,omitempty"`
	Name     string   `json:"name,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

// employeeWriter writes employees in one of list's formats.
type employeeWriter struct {
	write func(store.Employee)
	flush func() error
}

func newEmployeeWriter(w io.Writer, format string) (*employeeWriter, error) {
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tUSERNAME\tNAME\tROLES")
		return &employeeWriter{
			write: func(e store.Employee) {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Email, e.Username, e.Name, strings.Join(e.Roles, ","))
			},
			flush: tw.Flush,
		}, nil
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(csvColumns)
		return &employeeWriter{
			write: func(e store.Employee) {
				_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.Email, e.Username, e.Name, strings.Join(e.Roles, ";")})
			},
			flush: func() error { cw.Flush(); return cw.Error() },
		}, nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		var err error
		return &employeeWriter{
			write: func(e store.Employee) {
				if err == nil {
					err = enc.Encode(employeeRecord{ID: e.ID, Email: e.Email, Username: e.Username, Name: e.Name, Roles: e.Roles})
				}
			},
			flush: func() error { return err },
		}, nil
	}
	return nil, fmt.Errorf("employees list: --format %q: use table, csv or json", format)
}
