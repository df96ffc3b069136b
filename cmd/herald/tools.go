package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/store"
)

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, splitList(v)...); return nil }

// migrateCmd applies the embedded migrations to DATABASE_URL.
func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database-url", envOr(getenv, "DATABASE_URL", "sqlite:herald.db"), "database to migrate ($DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, *dsn, false)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied to", storeKind(*dsn), "store")
	return nil
}

// tokenCmd mints an HS256 token with JWT_SECRET.
func tokenCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the user claim: a username or email of the directory (required)")
	name := fs.String("name", "", "the name claim")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	secret := fs.String("secret", getenv("JWT_SECRET"), "signing secret ($JWT_SECRET)")
	var roles listFlag
	fs.Var(&roles, "role", "a role (rol claim); repeat or comma-separate for several")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	if *secret == "" {
		return errors.New("token: set JWT_SECRET (or --secret) to the server's secret")
	}
	tok, err := auth.MintHS256([]byte(*secret), auth.TokenSpec{User: *user, Name: *name, Roles: roles, TTL: *ttl}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// sendCmd publishes through a running Herald's API, as a service would.
func sendCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr(getenv, "HERALD_URL", "http://localhost:3000"), "Herald's base URL ($HERALD_URL)")
	token := fs.String("token", getenv("HERALD_TOKEN"), "bearer token ($HERALD_TOKEN); default: a service token minted with JWT_SECRET")
	var employees, emails, roles listFlag
	fs.Var(&employees, "employee", "target employee ID (repeatable)")
	fs.Var(&emails, "email", "target email (repeatable)")
	fs.Var(&roles, "role", "target role (repeatable)")
	all := fs.Bool("all", false, "target everyone")
	typ := fs.String("type", "message", "notification type")
	title := fs.String("title", "", "title (required)")
	body := fs.String("body", "", "body")
	data := fs.String("data", "", "data: a JSON object")
	ephemeral := fs.Bool("ephemeral", false, "do not store: deliver to open streams only")
	event := fs.String("event", "", "SSE event name of an ephemeral message")
	idem := fs.String("idempotency-key", "", "Idempotency-Key header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		secret := getenv("JWT_SECRET")
		if secret == "" {
			return errors.New("send: set --token (or HERALD_TOKEN), or JWT_SECRET to mint a service token")
		}
		role := "service"
		if r := splitList(envOr(getenv, "PUBLISHER_ROLES", "service")); len(r) > 0 {
			role = r[0]
		}
		t, err := auth.MintHS256([]byte(secret), auth.TokenSpec{User: "herald-cli", Roles: []string{role}, TTL: 5 * time.Minute}, time.Now())
		if err != nil {
			return err
		}
		*token = t
	}
	req := map[string]any{"type": *typ, "title": *title}
	to := map[string]any{}
	if len(employees) > 0 {
		ids := make([]int64, 0, len(employees))
		for _, e := range employees {
			id, err := strconv.ParseInt(e, 10, 64)
			if err != nil {
				return fmt.Errorf("send: --employee %q is not an ID", e)
			}
			ids = append(ids, id)
		}
		to["employees"] = ids
	}
	if len(emails) > 0 {
		to["emails"] = emails
	}
	if len(roles) > 0 {
		to["roles"] = roles
	}
	if *all {
		to["all"] = true
	}
	req["to"] = to
	if *body != "" {
		req["body"] = *body
	}
	if *data != "" {
		req["data"] = json.RawMessage(*data)
	}
	if *ephemeral {
		req["persist"] = false
		if *event != "" {
			req["event"] = *event
		}
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*base, "/")+"/notifications", bytes.NewReader(payload))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+*token)
	if *idem != "" {
		hr.Header.Set("Idempotency-Key", *idem)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprint(stdout, string(out))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("send: %s", resp.Status)
	}
	return nil
}

// employeesCmd manages the directory directly in DATABASE_URL. A running
// instance sees the change when its lookup cache expires (30 s); the HTTP
// API (PUT/DELETE /employees/{id}) takes effect at once.
func employeesCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	const help = "usage: herald employees list|put|delete|import [flags]"
	if len(args) == 0 {
		return errors.New(help)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("herald employees "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database-url", envOr(getenv, "DATABASE_URL", "sqlite:herald.db"), "database ($DATABASE_URL)")
	var (
		id                    = fs.Int64("id", 0, "employee ID (put, delete)")
		email, username, name = fs.String("email", "", "email (put)"), fs.String("username", "", "username (put)"), fs.String("name", "", "name (put)")
		roles                 listFlag
	)
	fs.Var(&roles, "roles", "comma-separated roles (put)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, *dsn, false)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tUSERNAME\tNAME\tROLES")
		for after := int64(0); ; {
			page, err := st.Employees(ctx, after, 500)
			if err != nil {
				return err
			}
			for _, e := range page {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Email, e.Username, e.Name, strings.Join(e.Roles, ","))
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].ID
		}
		return tw.Flush()
	case "put":
		if *id <= 0 || (*email == "" && *username == "") {
			return errors.New("employees put: --id and --email or --username are required")
		}
		e, created, err := st.PutEmployee(ctx, store.Employee{ID: *id, Email: *email, Username: *username, Name: *name, Roles: roles})
		if err != nil {
			return err
		}
		verb := "updated"
		if created {
			verb = "created"
		}
		fmt.Fprintf(stdout, "%s employee %d (%s)\n", verb, e.ID, firstNonEmpty(e.Username, e.Email))
		return nil
	case "delete":
		if *id <= 0 {
			return errors.New("employees delete: --id is required")
		}
		if err := st.DeleteEmployee(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted employee %d\n", *id)
		return nil
	case "import":
		return importEmployees(ctx, st, fs.Args(), stdin, stdout)
	}
	return errors.New(help)
}

// importEmployees reads CSV with a header row naming columns id, email,
// username, name, roles (roles separated by ';'), and puts each row.
func importEmployees(ctx context.Context, st store.Store, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("employees import: name one CSV file, or - for standard input")
	}
	in := stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	r := csv.NewReader(in)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("employees import: read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if _, ok := col["id"]; !ok {
		return errors.New("employees import: the header needs an id column")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	n := 0
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("employees import: line %d: %w", line, err)
		}
		id, err := strconv.ParseInt(get(rec, "id"), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("employees import: line %d: id %q is not a positive integer", line, get(rec, "id"))
		}
		var roles []string
		for _, r := range strings.Split(get(rec, "roles"), ";") {
			if r = strings.TrimSpace(r); r != "" {
				roles = append(roles, r)
			}
		}
		e := store.Employee{ID: id, Email: get(rec, "email"), Username: get(rec, "username"), Name: get(rec, "name"), Roles: roles}
		if _, _, err := st.PutEmployee(ctx, e); err != nil {
			return fmt.Errorf("employees import: line %d: %w", line, err)
		}
		n++
	}
	fmt.Fprintf(stdout, "imported %d employees\n", n)
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
