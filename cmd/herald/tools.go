package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers/webpush"
)

// listFlag collects a repeatable flag; commas separate several values too.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, splitList(v)...); return nil }

func migrateCommand() *command {
	return &command{
		name: "migrate", summary: "apply database migrations and exit",
		usage: "herald migrate [--database-url URL]",
		about: `Applies the embedded schema migrations to DATABASE_URL and exits. herald serve
does this at start too; run it alone to migrate before a deploy. On PostgreSQL
an advisory lock makes instances that migrate at once take turns.`,
		example: `DATABASE_URL='postgres://herald@db.internal:5432/herald?sslmode=require' herald migrate`,
		run:     migrateCmd,
	}
}

func migrateCmd(ctx context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	cfg, err := c.parseConfig(e, fs, args)
	if err != nil {
		return err
	}
	if err := c.noArgs(fs); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.DatabaseURL, nil, false)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(e.stdout, "migrations applied to %s\n", describeDatabase(cfg.DatabaseURL))
	return nil
}

func tokenCommand() *command {
	return &command{
		name: "token", summary: "mint an HS256 token signed with JWT_SECRET",
		usage: "herald token --user LOGIN [--role ROLE]... [--name NAME] [--ttl DURATION]",
		about: `Prints an HS256 token that a Herald with the same JWT_SECRET accepts, as a
bearer token or in the token cookie. --user is a username or email of the
directory. A role listed in the server's PUBLISHER_ROLES lets the token
publish; a --user that names nobody but holds such a role is a service
(it publishes and opens no streams).`,
		example: `export JWT_SECRET="$(cat herald.db.jwt-secret)"   # the server's secret; this file is what --dev made
herald token --user ben                          # ben opens streams and reads his inbox
herald token --user billing --role service       # a service that publishes
curl -N -H "Authorization: Bearer $(herald token --user ben)" http://localhost:3000/events`,
		run: tokenCmd,
	}
}

func tokenCmd(_ context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	user := fs.String("user", "", "the `LOGIN` (user claim): a username or email of the directory; required")
	name := fs.String("name", "", "the `NAME` claim, shown to people")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	var roles listFlag
	fs.Var(&roles, "role", "a `ROLE` (rol claim); repeat it or separate roles with commas")
	cfg, err := c.parseConfig(e, fs, args)
	if err != nil {
		return err
	}
	if err := c.noArgs(fs); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required (a username or email of the directory, e.g. --user ben)")
	}
	if cfg.JWTSecret == "" {
		return errors.New("token: set JWT_SECRET (or --jwt-secret) to the server's secret")
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl %s: give a positive duration, e.g. 1h", *ttl)
	}
	tok, err := auth.MintHS256([]byte(cfg.JWTSecret), auth.TokenSpec{User: *user, Name: *name, Roles: roles, TTL: *ttl}, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

func sendCommand() *command {
	return &command{
		name: "send", summary: "publish a notification through a running Herald",
		usage: "herald send --title TEXT (--employee ID | --email ADDR | --role ROLE | --all)... [flags]",
		about: `Publishes a notification with POST /notifications, as a service would, and
prints Herald's answer. The token is HERALD_TOKEN (--token), else a
five-minute service token minted with JWT_SECRET and the first of
PUBLISHER_ROLES. Targets may be combined and repeated.`,
		example: `export HERALD_URL=http://localhost:3000 JWT_SECRET="$(cat herald.db.jwt-secret)"   # the server's secret
herald send --employee 2 --title 'Hello Ben' --data '{"from":"ana"}'
herald send --role admin --title 'Deploy at 18:00' --idempotency-key deploy-1800
herald send --all --ephemeral --event typing --title 'ana is typing'`,
		run: sendCmd,
	}
}

// sendFlags are herald send's own flags.
type sendFlags struct {
	employees, emails, roles listFlag
	all, ephemeral           bool
	typ, title, body, data   string
	event, idempotencyKey    string
}

func sendCmd(ctx context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	var f sendFlags
	fs.Var(&f.employees, "employee", "a target employee `ID` (repeatable)")
	fs.Var(&f.emails, "email", "a target employee's `EMAIL` (repeatable)")
	fs.Var(&f.roles, "role", "a target `ROLE`: everyone who holds it (repeatable)")
	fs.BoolVar(&f.all, "all", false, "target everyone")
	fs.StringVar(&f.typ, "type", "message", "the notification's `TYPE`, [a-z0-9_.-]")
	fs.StringVar(&f.title, "title", "", "the `TEXT` of the title; required")
	fs.StringVar(&f.body, "body", "", "the body `TEXT`")
	fs.StringVar(&f.data, "data", "", "a `JSON` object for the receiving app, e.g. '{\"id\":7}'")
	fs.BoolVar(&f.ephemeral, "ephemeral", false, "do not store: deliver to open streams only")
	fs.StringVar(&f.event, "event", "", "the SSE event `NAME` of an ephemeral message")
	fs.StringVar(&f.idempotencyKey, "idempotency-key", "", "the Idempotency-Key header: a retry with the same `KEY` creates nothing")
	cfg, err := c.parseConfig(e, fs, args)
	if err != nil {
		return err
	}
	if err := c.noArgs(fs); err != nil {
		return err
	}
	payload, err := f.request()
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	token := cfg.HeraldToken
	if token == "" {
		if token, err = serviceToken(cfg); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	url := strings.TrimSuffix(cfg.HeraldURL, "/") + "/notifications"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+token)
	if f.idempotencyKey != "" {
		hr.Header.Set("Idempotency-Key", f.idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("send: %w (is Herald running at %s? set HERALD_URL or --url)", err, cfg.HeraldURL)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprint(e.stdout, string(out))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("send: %s", resp.Status)
	}
	return nil
}

// request checks the flags and builds the publish body.
func (f *sendFlags) request() ([]byte, error) {
	if f.title == "" {
		return nil, errors.New("--title is required")
	}
	to := map[string]any{}
	if len(f.employees) > 0 {
		ids := make([]int64, 0, len(f.employees))
		for _, s := range f.employees {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				return nil, fmt.Errorf("--employee %q is not an employee ID (a positive whole number)", s)
			}
			ids = append(ids, id)
		}
		to["employees"] = ids
	}
	if len(f.emails) > 0 {
		to["emails"] = f.emails
	}
	if len(f.roles) > 0 {
		to["roles"] = f.roles
	}
	if f.all {
		to["all"] = true
	}
	if len(to) == 0 {
		return nil, errors.New("no target: give --employee, --email, --role or --all")
	}
	req := map[string]any{"to": to, "type": f.typ, "title": f.title}
	if f.body != "" {
		req["body"] = f.body
	}
	if f.data != "" {
		const hint = `give a JSON object, quoted for the shell: --data '{"request_id":481}'`
		if !json.Valid([]byte(f.data)) {
			return nil, fmt.Errorf("--data %q is not JSON: %s", f.data, hint)
		}
		if d := bytes.TrimSpace([]byte(f.data)); d[0] != '{' {
			return nil, fmt.Errorf("--data %q is JSON but not an object: %s", f.data, hint)
		}
		req["data"] = json.RawMessage(f.data)
	}
	if f.ephemeral {
		req["persist"] = false
		if f.event != "" {
			req["event"] = f.event
		}
	} else if f.event != "" {
		return nil, errors.New("--event names an ephemeral message's event: add --ephemeral")
	}
	return json.Marshal(req)
}

// serviceToken mints a short-lived token for herald send with JWT_SECRET.
func serviceToken(cfg config) (string, error) {
	if cfg.JWTSecret == "" {
		return "", errors.New("send: set HERALD_TOKEN (or --token), or JWT_SECRET to mint a service token")
	}
	role := "service"
	if len(cfg.PublisherRoles) > 0 {
		role = cfg.PublisherRoles[0]
	}
	t, err := auth.MintHS256([]byte(cfg.JWTSecret), auth.TokenSpec{User: "herald-cli", Roles: []string{role}, TTL: 5 * time.Minute}, time.Now())
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	return t, nil
}

func vapidCommand() *command {
	return &command{
		name: "vapid", summary: "print a new VAPID key pair for Web Push",
		usage: "herald vapid",
		about: `Prints a new VAPID key pair as VAPID_PRIVATE_KEY=… and VAPID_PUBLIC_KEY=…
lines (base64url, the form web-push tools print). Give every instance the same
VAPID_PRIVATE_KEY, with VAPID_SUBJECT: browsers' subscriptions are bound to
its public key, so a new key means every browser subscribes again. The
public key is derived from the private one (GET /push/key serves it).`,
		example: `herald vapid >> herald.env`,
		run:     vapidCmd,
	}
}

func vapidCmd(_ context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	if err := c.noArgs(fs); err != nil {
		return err
	}
	k, err := webpush.GenerateKey()
	if err != nil {
		return fmt.Errorf("vapid: %w", err)
	}
	fmt.Fprintf(e.stdout, "VAPID_PRIVATE_KEY=%s\nVAPID_PUBLIC_KEY=%s\n", k.Private(), k.Public())
	return nil
}
