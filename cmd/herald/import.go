package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/corp/herald/handlers"
	"github.com/corp/herald/store"
)

// csvColumns are the columns employees import reads and list writes.
var csvColumns = []string{"id", "email", "username", "name", "roles"}

const columnsHint = "expected a header row with the columns id,email,username,name,roles (id and email or username required; any order)"

// importRecord is one employee read from a file, with where it was.
type importRecord struct {
	where string // "line 3" or "record 2"
	emp   store.Employee
}

func employeesImport(ctx context.Context, c *command, e env, args []string) error {
	var format string
	dsn, rest, err := directoryFlags(c, e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "auto", "input `FORMAT`: auto, csv or json")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("employees import: name one file, or - for standard input (herald employees import -h shows the formats)")
	}
	in, name := e.stdin, "standard input"
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return fmt.Errorf("employees import: %w", err)
		}
		defer f.Close()
		in, name = f, rest[0]
	}
	// Read and check everything before writing anything.
	records, err := readEmployees(in, rest[0], format)
	if err != nil {
		return fmt.Errorf("employees import: %s: %w", name, err)
	}
	st, err := openStore(ctx, dsn, nil, false)
	if err != nil {
		return err
	}
	defer st.Close()
	created := 0
	for i, r := range records {
		_, isNew, err := putEmployee(ctx, st, r.emp)
		if err != nil {
			return fmt.Errorf("employees import: %s: %s: %w (the %d employees before it were saved)", name, r.where, err, i)
		}
		if isNew {
			created++
		}
	}
	fmt.Fprintf(e.stdout, "imported %d employees (%d created, %d updated)\n", len(records), created, len(records)-created)
	return nil
}

// readEmployees reads every record of in and checks each as the HTTP API
// would; the first problem stops it.
func readEmployees(in io.Reader, path, format string) ([]importRecord, error) {
	br := bufio.NewReader(in)
	switch format {
	case "auto":
		format = "csv"
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".json" || ext == ".jsonl" || ext == ".ndjson" {
			format = "json"
		} else if b, _ := peekNonSpace(br); b == '[' || b == '{' {
			format = "json"
		}
	case "csv", "json":
	default:
		return nil, fmt.Errorf("--format %q: use auto, csv or json", format)
	}
	var (
		records []importRecord
		err     error
	)
	if format == "json" {
		records, err = readJSONEmployees(br)
	} else {
		records, err = readCSVEmployees(br)
	}
	if err != nil {
		return nil, err
	}
	seen := map[int64]string{}
	for _, r := range records {
		if problems := handlers.CheckEmployee(r.emp); len(problems) > 0 {
			return nil, fmt.Errorf("%s: employee %d: %s: %s", r.where, r.emp.ID, problems[0].Field, problems[0].Message)
		}
		if prev, dup := seen[r.emp.ID]; dup {
			return nil, fmt.Errorf("%s: employee %d appears twice (also %s)", r.where, r.emp.ID, prev)
		}
		seen[r.emp.ID] = r.where
	}
	return records, nil
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for n := 1; n <= 4096; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, err
		}
		if c := b[n-1]; c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != 0xEF && c != 0xBB && c != 0xBF {
			return c, nil
		}
	}
	return 0, nil
}

func readCSVEmployees(in io.Reader) ([]importRecord, error) {
	r := csv.NewReader(in)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err == io.EOF {
		return nil, errors.New("the input is empty: " + columnsHint)
	}
	if err != nil {
		return nil, fmt.Errorf("the header row: %w", err)
	}
	col, err := csvHeader(header)
	if err != nil {
		return nil, err
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []importRecord
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, err // csv's errors name the line
		}
		where := "line " + strconv.Itoa(line)
		id, err := strconv.ParseInt(get(rec, "id"), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%s: id %q is not a positive whole number", where, get(rec, "id"))
		}
		var roles []string
		for _, role := range strings.Split(get(rec, "roles"), ";") {
			if role = strings.TrimSpace(role); role != "" {
				roles = append(roles, role)
			}
		}
		out = append(out, importRecord{where: where, emp: store.Employee{
			ID: id, Email: get(rec, "email"), Username: get(rec, "username"), Name: get(rec, "name"), Roles: roles,
		}})
	}
}

// csvHeader maps the header's columns to their positions, refusing unknown
// or repeated columns and a header without id or a login column.
func csvHeader(header []string) (map[string]int, error) {
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case len(header) == 1 && strings.Contains(name, ";"):
			return nil, fmt.Errorf("the header %q is separated by ';': separate columns with commas (roles inside a column use ';'); %s", h, columnsHint)
		case !slices.Contains(csvColumns, name):
			return nil, fmt.Errorf("unknown column %q in the header: %s", h, columnsHint)
		}
		if _, dup := col[name]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header: %s", name, columnsHint)
		}
		col[name] = i
	}
	_, hasEmail := col["email"]
	_, hasUsername := col["username"]
	if _, ok := col["id"]; !ok || (!hasEmail && !hasUsername) {
		return nil, fmt.Errorf("the header %q lacks id, or both email and username: %s", strings.Join(header, ","), columnsHint)
	}
	return col, nil
}

func readJSONEmployees(in io.Reader) ([]importRecord, error) {
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	array := false
	if br, ok := in.(*bufio.Reader); ok {
		if b, _ := peekNonSpace(br); b == '[' {
			array = true
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
		}
	}
	var out []importRecord
	for n := 1; ; n++ {
		if array && !dec.More() {
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("after record %d: %w", n-1, err)
			}
			return out, nil
		}
		var rec employeeRecord
		err := dec.Decode(&rec)
		if err == io.EOF && !array {
			return out, nil
		}
		where := "record " + strconv.Itoa(n)
		if err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return nil, fmt.Errorf("%s: field %q should be %s; the fields are id (number), email, username, name (strings) and roles (array of strings)", where, ute.Field, ute.Type)
			}
			if msg := err.Error(); strings.Contains(msg, "unknown field") {
				return nil, fmt.Errorf("%s: %s; the fields are id, email, username, name and roles", where, strings.TrimPrefix(msg, "json: "))
			}
			return nil, fmt.Errorf("%s: not JSON: %w", where, err)
		}
		if rec.ID <= 0 {
			return nil, fmt.Errorf("%s: \"id\" must be a positive whole number", where)
		}
		out = append(out, importRecord{where: where, emp: store.Employee{
			ID: rec.ID, Email: strings.TrimSpace(rec.Email), Username: strings.TrimSpace(rec.Username), Name: rec.Name, Roles: rec.Roles,
		}})
	}
}
