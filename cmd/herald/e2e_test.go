package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
)

var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-e2e")
	if err != nil {
		panic(err)
	}
	heraldBin = filepath.Join(dir, "herald")
	out, err := exec.Command("go", "build", "-race", "-o", heraldBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const e2eSecret = "e2e-secret-e2e-secret-e2e-secret-e2e"

// proc is a running `herald serve`.
type proc struct {
	cmd    *exec.Cmd
	URL    string
	mu     sync.Mutex
	stdout bytes.Buffer
	logs   bytes.Buffer
	exited chan error
}

func (p *proc) Logs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.logs.String() }

// startHerald runs the binary with env (on top of a minimal environment)
// and waits for its "listening" line.
func startHerald(t *testing.T, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HTTP_ADDR=127.0.0.1:0",
		"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "h.db")}, env...)
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	cmd.Stdout = &lockedWriter{mu: &p.mu, w: &p.stdout}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("herald did not start:\n%s", p.Logs())
	}
	return p
}

// stopHerald sends p SIGTERM and waits for it to exit with code 0.
func stopHerald(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup, which waits for it too
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", p.Logs())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mint(t *testing.T, user string, roles ...string) string {
	t.Helper()
	return mintWith(t, "JWT_SECRET="+e2eSecret, user, roles...)
}

// mintWith mints a token with secret ("JWT_SECRET=…").
func mintWith(t *testing.T, secret, user string, roles ...string) string {
	t.Helper()
	args := []string{"token", "--user", user, "--ttl", "10m"}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	out, err := runCLI(t, []string{secret}, args...)
	if err != nil {
		t.Fatalf("herald token: %v %s", err, out)
	}
	return strings.TrimSpace(out)
}

// TestEndToEnd drives the real binary over HTTP as a deployment would:
// directory, stream, publish, inbox, read state, then SIGTERM.
func TestEndToEnd(t *testing.T) {
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "HEARTBEAT_INTERVAL=1s")
	svc := mint(t, "hr-sync", "service", "Directory.Write")

	for id, user := range map[int]string{12: "ana", 15: "ben"} {
		status, _, out := heraldtest.Do(t, "PUT", fmt.Sprintf("%s/employees/%d", p.URL, id), svc,
			map[string]any{"email": user + "@corp.example", "username": user, "name": strings.ToUpper(user)})
		if status != 201 {
			t.Fatalf("PUT employee %d: %d %s", id, status, out)
		}
	}
	ana := mint(t, "ana@corp.example")
	stream := heraldtest.MustOpenStream(t, p.URL+"/events", ana)

	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", svc, map[string]any{
		"to":   map[string]any{"employees": []int{12, 99}, "emails": []string{"ben@corp.example"}},
		"type": "request.approved", "title": "Your request was approved", "body": "Vacation", "data": map[string]any{"request_id": 481},
	}, "Idempotency-Key", "req-481")
	if status != 201 || !strings.Contains(string(out), `"recipients":2`) || !strings.Contains(string(out), `"unknown":[99]`) {
		t.Fatalf("publish: %d %s", status, out)
	}
	m := stream.MustNext(t, 10*time.Second)
	if m.ID != "1" || m.Event != "notification" || !strings.Contains(m.Data, `"title":"Your request was approved"`) || !strings.Contains(m.Data, `"request_id":481`) {
		t.Fatalf("stream got %+v", m)
	}
	if hb, err := stream.NextBlock(5 * time.Second); err != nil || hb.Dispatched() {
		t.Fatalf("expected a heartbeat comment within HEARTBEAT_INTERVAL: %+v %v", hb, err)
	}
	// The retry with the same key creates nothing.
	status, _, _ = heraldtest.Do(t, "POST", p.URL+"/notifications", svc, map[string]any{
		"to":   map[string]any{"employees": []int{12, 99}, "emails": []string{"ben@corp.example"}},
		"type": "request.approved", "title": "Your request was approved", "body": "Vacation", "data": map[string]any{"request_id": 481},
	}, "Idempotency-Key", "req-481")
	if status != 201 {
		t.Fatalf("retry: %d", status)
	}
	stream.ExpectQuiet(t, 300*time.Millisecond)

	ben := mint(t, "ben")
	status, _, out = heraldtest.Do(t, "GET", p.URL+"/notifications?unread=true", ben, nil)
	if status != 200 || !strings.Contains(string(out), `"unread_count":1`) || !strings.Contains(string(out), `"id":"1"`) {
		t.Fatalf("ben's inbox: %d %s", status, out)
	}
	status, _, out = heraldtest.Do(t, "POST", p.URL+"/notifications/read", ben, map[string]any{"ids": []string{"1"}})
	if status != 200 || !strings.Contains(string(out), `"unread_count":0`) {
		t.Fatalf("mark read: %d %s", status, out)
	}
	status, _, out = heraldtest.Do(t, "GET", p.URL+"/notifications", "", nil)
	if status != 401 || !strings.Contains(string(out), `"missing_token"`) {
		t.Fatalf("no token: %d %s", status, out)
	}

	// SIGTERM: not ready, streams closed, exit 0 within 10 s.
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	stream.WaitClosed(t, 10*time.Second)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
		}
		p.exited <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if !strings.Contains(p.Logs(), "msg=stopped") {
		t.Fatalf("no clean stop in the logs:\n%s", p.Logs())
	}
}

func TestRefusesToStartWithoutAuth(t *testing.T) {
	out, err := runCLI(t, []string{"HTTP_ADDR=127.0.0.1:0"}, "serve")
	if err == nil {
		t.Fatalf("serve started without auth:\n%s", out)
	}
	for _, want := range []string{"JWT_SECRET", "AZURE_ISSUER_BASE_URL", "--dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("message does not name %s:\n%s", want, out)
		}
	}
}

// TestDevMode: --dev seeds demo employees and prints commands that work.
func TestDevMode(t *testing.T) {
	p := startHerald(t, []string{"serve", "--dev"})
	var banner string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(banner, "inbox") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s", banner)
		}
		time.Sleep(20 * time.Millisecond)
		p.mu.Lock()
		banner = p.stdout.String()
		p.mu.Unlock()
	}
	tokens := regexp.MustCompile(`Bearer ([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(banner, -1)
	if len(tokens) < 3 || !strings.Contains(banner, "curl -N") || !strings.Contains(banner, "JWT_SECRET=") {
		t.Fatalf("banner lacks ready-to-paste commands:\n%s", banner)
	}
	ben, ana := tokens[0][1], tokens[1][1]
	s := heraldtest.MustOpenStream(t, p.URL+"/events", ben)
	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", ana,
		[]byte(`{"to":{"employees":[2]},"type":"demo.hello","title":"Hello Ben","data":{"from":"ana"}}`))
	if status != 201 {
		t.Fatalf("the banner's publish: %d %s", status, out)
	}
	if m := s.MustNext(t, 10*time.Second); !strings.Contains(m.Data, "Hello Ben") {
		t.Fatalf("ben got %+v", m)
	}
	status, _, out = heraldtest.Do(t, "GET", p.URL+"/", "", nil)
	if status != 200 || !strings.Contains(string(out), `from "/herald.js"`) || !strings.Contains(string(out), "herald-inbox") {
		t.Fatalf("demo page: %d %.200s", status, out)
	}
}

func TestCLI(t *testing.T) {
	dsn := "DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "cli.db")
	if out, err := runCLI(t, nil, "version"); err != nil || !strings.HasPrefix(out, "herald ") {
		t.Fatalf("version: %v %s", err, out)
	}
	if out, err := runCLI(t, []string{dsn}, "migrate"); err != nil || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	csv := filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(csv, []byte("id,email,username,name,roles\n1,ana@corp.example,ana,Ana,admin;staff\n2,ben@corp.example,ben,Ben,\n"), 0o600)
	if out, err := runCLI(t, []string{dsn}, "employees", "import", csv); err != nil || !strings.Contains(out, "imported 2") {
		t.Fatalf("import: %v %s", err, out)
	}
	if out, err := runCLI(t, []string{dsn}, "employees", "put", "--id", "3", "--username", "cara", "--roles", "ops"); err != nil || !strings.Contains(out, "created employee 3") {
		t.Fatalf("put: %v %s", err, out)
	}
	out, err := runCLI(t, []string{dsn}, "employees", "list")
	if err != nil || !strings.Contains(out, "ana@corp.example") || !strings.Contains(out, "admin,staff") || !strings.Contains(out, "cara") {
		t.Fatalf("list: %v %s", err, out)
	}
	if out, err := runCLI(t, []string{dsn}, "employees", "delete", "--id", "2"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	if out, err := runCLI(t, nil, "token", "--user", "x"); err == nil || !strings.Contains(out, "JWT_SECRET") {
		t.Fatalf("token without a secret: %v %s", err, out)
	}
	if out, err := runCLI(t, nil, "frobnicate"); err == nil || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

// TestSendCommand publishes with `herald send` against a running server.
func TestSendCommand(t *testing.T) {
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret)
	svc := mint(t, "svc", "service", "Directory.Write")
	heraldtest.Do(t, "PUT", p.URL+"/employees/7", svc, map[string]any{"username": "gil"})
	s := heraldtest.MustOpenStream(t, p.URL+"/events", mint(t, "gil"))
	out, err := runCLI(t, []string{"JWT_SECRET=" + e2eSecret, "HERALD_URL=" + p.URL}, "send", "--employee", "7", "--title", "From the CLI", "--data", `{"k":1}`)
	if err != nil || !strings.Contains(out, `"recipients":1`) {
		t.Fatalf("send: %v %s", err, out)
	}
	if m := s.MustNext(t, 10*time.Second); !strings.Contains(m.Data, "From the CLI") {
		t.Fatalf("stream got %+v", m)
	}
}

// TestDevSecretSurvivesRestart: --dev without JWT_SECRET keeps its generated
// secret beside the database (mode 0600), so a token printed at one start
// works after a restart, and the banner's commands run as printed.
func TestDevSecretSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db := "DATABASE_URL=sqlite:" + filepath.Join(dir, "dev.db")
	p := startHerald(t, []string{"serve", "--dev"}, db)
	banner := waitBanner(t, p)
	fi, err := os.Stat(filepath.Join(dir, "dev.db.jwt-secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v, want mode 0600", fi, err)
	}
	ben := regexp.MustCompile(`Bearer ([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(banner, -1)[0][1]

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit: %v", err)
	}
	p.exited <- nil
	p2 := startHerald(t, []string{"serve", "--dev"}, db)
	banner = waitBanner(t, p2)
	s := heraldtest.MustOpenStream(t, p2.URL+"/events", ben) // a token of the first start

	// Every printed command that publishes or mints runs as printed.
	for _, line := range strings.Split(banner, "\n") {
		if !strings.HasPrefix(line, "curl -X POST") && !strings.Contains(line, " send ") && !strings.Contains(line, " token ") {
			continue
		}
		if _, err := exec.LookPath("curl"); err != nil && strings.HasPrefix(line, "curl") {
			t.Logf("no curl here: not running %q", line)
			continue
		}
		out, err := exec.Command("sh", "-c", line).CombinedOutput()
		if err != nil {
			t.Fatalf("the banner's %q: %v\n%s", line, err, out)
		}
	}
	for want := range strings.SplitSeq("Hello Ben,Hello again", ",") {
		if _, err := exec.LookPath("curl"); err != nil && want == "Hello Ben" {
			continue
		}
		if m := s.MustNext(t, 10*time.Second); !strings.Contains(m.Data, want) {
			t.Fatalf("ben's stream got %+v, want %q", m, want)
		}
	}
}

// waitBanner returns --dev's banner once it is printed.
func waitBanner(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		banner := p.stdout.String()
		p.mu.Unlock()
		if strings.Contains(banner, " token ") {
			return banner
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s", banner)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
