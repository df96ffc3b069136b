package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the program in-process as `herald args…` with the environment kv.
func cli(t *testing.T, stdin string, args []string, kv ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, env{getenv: getenvOf(kv...), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	return out.String(), errOut.String(), err
}

// TestEveryCommandHasHelp: -h on every command and subcommand prints its
// usage, its flags and a runnable example on stdout, and exits 0.
func TestEveryCommandHasHelp(t *testing.T) {
	var all []*command
	for _, c := range commands() {
		all = append(all, c)
		all = append(all, c.subs...)
	}
	for _, c := range all {
		args := append(strings.Fields(c.name), "-h")
		out, _, err := cli(t, "", args)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("herald %s -h: error %v, want flag.ErrHelp (exit 0)", c.name, err)
		}
		if !strings.HasPrefix(out, "Usage: herald") {
			t.Errorf("herald %s -h: no usage:\n%s", c.name, out)
		}
		if c.name != "version" && !strings.Contains(out, "\nExample:\n") {
			t.Errorf("herald %s -h: no example:\n%s", c.name, out)
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		out, _, err := cli(t, "", args)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "employees import") || !strings.Contains(out, "token") {
			t.Errorf("herald %s: %v\n%s", args[0], err, out)
		}
	}
	out, _, _ := cli(t, "", []string{"help", "employees", "import"})
	for _, want := range []string{"id,email,username,name,roles", `"roles":["admin","staff"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("herald help employees import: no %s in\n%s", want, out)
		}
	}
	out, _, _ = cli(t, "", []string{"serve", "-h"})
	var c config
	for _, o := range c.options() {
		if o.readBy("serve") && (!strings.Contains(out, "--"+o.flagName()) || !o.flagOnly && !strings.Contains(out, "$"+o.name)) {
			t.Errorf("herald serve -h lacks --%s / $%s", o.flagName(), o.name)
		}
	}
}

func TestCLIErrorsSayWhatToFix(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "h.db")
	if _, _, err := cli(t, "", []string{"employees", "put", "--id", "1", "--username", "ana", "--email", "ana@corp.example"}, "DATABASE_URL", dsn); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		env   []string
		want  []string
	}{
		{"import with a wrong header", "ID;Mail\n1;a@b.example\n", []string{"employees", "import", "-"}, []string{"DATABASE_URL", dsn},
			[]string{"id,email,username,name,roles", "';'"}},
		{"import with an unknown column", "id,mail\n1,a@b.example\n", []string{"employees", "import", "-"}, []string{"DATABASE_URL", dsn},
			[]string{`unknown column "mail"`, "id,email,username,name,roles"}},
		{"import of a row without a login", "id,email,username\n7,,\n", []string{"employees", "import", "-"}, []string{"DATABASE_URL", dsn},
			[]string{"line 2", "employee 7", "email or a username"}},
		{"import of JSON with a typo", `[{"id":7,"mail":"x@y.example"}]`, []string{"employees", "import", "-"}, []string{"DATABASE_URL", dsn},
			[]string{"record 1", `"mail"`}},
		{"put taking another's username", "", []string{"employees", "put", "--id", "2", "--username", "ana"}, []string{"DATABASE_URL", dsn},
			[]string{`username "ana"`, "employee 1"}},
		{"put taking another's email", "", []string{"employees", "put", "--id", "2", "--email", "ANA@corp.example"}, []string{"DATABASE_URL", dsn},
			[]string{"email", "employee 1"}},
		{"send with data that is not JSON", "", []string{"send", "--employee", "1", "--title", "x", "--data", "notjson"}, []string{"JWT_SECRET", "s"},
			[]string{`--data "notjson" is not JSON`}},
		{"send without a target", "", []string{"send", "--title", "x"}, []string{"JWT_SECRET", "s"},
			[]string{"--employee, --email, --role or --all"}},
		{"sqlite in a missing directory", "", []string{"migrate"}, []string{"DATABASE_URL", "sqlite:" + filepath.Join(dir, "nope", "h.db")},
			[]string{"DATABASE_URL", filepath.Join(dir, "nope", "h.db"), "directory"}},
		{"postgres that is not there", "", []string{"migrate"}, []string{"DATABASE_URL", "postgres://herald:pw@127.0.0.1:1/herald?sslmode=disable&connect_timeout=2"},
			[]string{"DATABASE_URL", "127.0.0.1:1", "database herald"}},
		{"a bad boolean", "", []string{"serve"}, []string{"JWT_SECRET", "s", "H2C", "maybe"},
			[]string{"H2C", `"maybe" is not a boolean`}},
		{"a stray argument", "", []string{"token", "--user", "x", "extra"}, []string{"JWT_SECRET", "s"},
			[]string{`unexpected argument "extra"`}},
		{"an unknown flag", "", []string{"token", "--usr", "x"}, nil,
			[]string{"-usr", "herald token -h"}},
	}
	for _, tt := range tests {
		_, _, err := cli(t, tt.stdin, tt.args, tt.env...)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %s", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "pw") || tt.args[0] == "employees" && strings.Contains(err.Error(), "unavailable") {
			t.Errorf("%s: error %q shows a password, or blames the store for bad input", tt.name, err)
		}
	}
}

// TestBusyAddressChangesNothing: serve on an address in use names
// HTTP_ADDR and creates no database.
func TestBusyAddressChangesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "h.db")
	_, _, err = cli(t, "", []string{"serve", "--dev"}, "HTTP_ADDR", ln.Addr().String(), "DATABASE_URL", "sqlite:"+db)
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR="+ln.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a busy address: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(db)); len(entries) != 0 {
		t.Fatalf("serve on a busy address created %v", entries)
	}
}

func TestImportCSVAndJSONAndListRoundTrip(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "h.db")
	csvIn := "\ufeffID, Email ,username,name,roles\n12,ana@corp.example,ana,Ana Ruiz,admin;staff\n15,ben@corp.example,ben,\"Okafor, Ben\",\n"
	if out, _, err := cli(t, csvIn, []string{"employees", "import", "-"}, "DATABASE_URL", dsn); err != nil || !strings.Contains(out, "imported 2 employees (2 created") {
		t.Fatalf("csv import: %v %s", err, out)
	}
	jsonIn := `[{"id":15,"email":"ben@corp.example","username":"ben","name":"Ben","roles":["ops"]},
	            {"id":16,"username":"cara"}]`
	if out, _, err := cli(t, jsonIn, []string{"employees", "import", "-"}, "DATABASE_URL", dsn); err != nil || !strings.Contains(out, "1 created, 1 updated") {
		t.Fatalf("json import: %v %s", err, out)
	}
	lines := `{"id":17,"username":"dan"}` + "\n" + `{"id":18,"email":"eve@corp.example"}` + "\n"
	if out, _, err := cli(t, lines, []string{"employees", "import", "-"}, "DATABASE_URL", dsn); err != nil || !strings.Contains(out, "imported 2") {
		t.Fatalf("json lines import: %v %s", err, out)
	}
	csvOut, _, err := cli(t, "", []string{"employees", "list", "--format", "csv"}, "DATABASE_URL", dsn)
	if err != nil || !strings.Contains(csvOut, "12,ana@corp.example,ana,Ana Ruiz,admin;staff") || !strings.Contains(csvOut, "15,ben@corp.example,ben,Ben,ops") {
		t.Fatalf("list csv: %v\n%s", err, csvOut)
	}
	jsonOut, _, _ := cli(t, "", []string{"employees", "list", "--format", "json"}, "DATABASE_URL", dsn)
	dsn2 := "sqlite:" + filepath.Join(t.TempDir(), "h2.db")
	if out, _, err := cli(t, jsonOut, []string{"employees", "import", "-"}, "DATABASE_URL", dsn2); err != nil || !strings.Contains(out, "imported 5") {
		t.Fatalf("list --format json | import: %v %s", err, out)
	}
}
