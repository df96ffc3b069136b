package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeDir holds the Node client test: its own package.json and lock (the
// npm eventsource package), installed into its own node_modules.
const nodeDir = "testdata/node"

// nodeTools returns the node and npm commands, skipping the test outside
// CI when they are missing and failing it under CI=true.
func nodeTools(t *testing.T) (node, npm string) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode == nil && errNpm == nil {
		return node, npm
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but node or npm is missing: the Node client test must run")
	}
	t.Skip("no node/npm: install Node.js 20 or newer to run the Node client test")
	return "", ""
}

// npmCI installs the test's packages at the versions of its lock file,
// unless they are there already.
func npmCI(t *testing.T, npm string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(nodeDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if installed, err := os.Stat(filepath.Join(nodeDir, "node_modules", ".package-lock.json")); err == nil && installed.ModTime().After(lock.ModTime()) {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = nodeDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", nodeDir, err, out)
	}
}

// TestNodeClient runs testdata/node/client.test.mjs against the binary: a
// non-browser client on the npm eventsource package (wire format, resume
// with ?lastEventId= and with its own Last-Event-ID reconnect after
// token_expired), and herald.js itself under Node.
func TestNodeClient(t *testing.T) {
	node, npm := nodeTools(t)
	npmCI(t, npm)
	p := startHerald(t, []string{"serve", "--dev"}, "JWT_SECRET="+e2eSecret)
	heraldJS, err := filepath.Abs("../../handlers/web/herald.js")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.test.mjs")
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "HERALD="+p.URL, "JWT_SECRET="+e2eSecret, "HERALD_JS="+heraldJS)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node client.test.mjs: %v\n%s\nHerald's log:\n%s", err, out, p.Logs())
	}
	t.Logf("%s", out)
}
