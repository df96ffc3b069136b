package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// sioDir holds the socket.io-client driver: its own package.json and lock,
// installed into its own node_modules by npm ci.
const sioDir = "testdata/socketio"

var sioInstall struct {
	once sync.Once
	err  string
}

// sioNode returns the node command with socket.io-client installed; it
// skips the test outside CI when Node is missing and fails it under CI=true.
func sioNode(t *testing.T) string {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but node or npm is missing: the socket.io-client tests must run")
		}
		t.Skip("no node/npm: install Node.js 20 or newer to run the socket.io-client tests")
	}
	sioInstall.once.Do(func() {
		lock, err := os.Stat(filepath.Join(sioDir, "package-lock.json"))
		if err != nil {
			sioInstall.err = err.Error()
			return
		}
		if got, err := os.Stat(filepath.Join(sioDir, "node_modules", ".package-lock.json")); err == nil && got.ModTime().After(lock.ModTime()) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = sioDir
		if out, err := cmd.CombinedOutput(); err != nil {
			sioInstall.err = "npm ci in " + sioDir + ": " + err.Error() + "\n" + string(out)
		}
	})
	if sioInstall.err != "" {
		t.Fatal(sioInstall.err)
	}
	return node
}

// sioEvent is one line of the driver's output.
type sioEvent struct {
	Client    string            `json:"client"`
	Type      string            `json:"type"`
	Transport string            `json:"transport"`
	ID        string            `json:"id"`
	Message   string            `json:"message"`
	Data      json.RawMessage   `json:"data"`
	Reason    string            `json:"reason"`
	Event     string            `json:"event"`
	Args      []json.RawMessage `json:"args"`
}

// sioDriver runs driver.js: commands go to its stdin, what its sockets see
// comes back per client.
type sioDriver struct {
	t     *testing.T
	url   string
	stdin io.WriteCloser

	mu       sync.Mutex
	queues   map[string]chan sioEvent
	upgraded map[string]bool // clients whose upgrade expect skipped
	acks     chan string
}

func newSIODriver(t *testing.T, url string) *sioDriver {
	t.Helper()
	node := sioNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "driver.js")
	cmd.Dir = sioDir
	cmd.Env = append(os.Environ(), "DEBUG="+os.Getenv("SIO_DEBUG"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &sioDriver{t: t, url: url, stdin: stdin, queues: map[string]chan sioEvent{}, upgraded: map[string]bool{}, acks: make(chan string, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev sioEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("driver output %q: %v", sc.Text(), err)
				continue
			}
			if ev.Type == "ack" {
				d.acks <- ev.Client
				continue
			}
			d.queue(ev.Client) <- ev
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(wait):
		}
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("driver stderr:\n%s", stderr.String())
		}
	})
	return d
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (d *sioDriver) queue(client string) chan sioEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[client]
	if q == nil {
		q = make(chan sioEvent, 4096)
		d.queues[client] = q
	}
	return q
}

// send writes one command and waits until the driver has run it.
func (d *sioDriver) send(cmd map[string]any) {
	d.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("driver: %v", err)
	}
	select {
	case <-d.acks:
	case <-time.After(wait):
		d.t.Fatalf("driver did not run %s", b)
	}
}

// open makes client connect with socket.io-client options opts.
func (d *sioDriver) open(client string, opts map[string]any, resume bool) {
	d.t.Helper()
	d.send(map[string]any{"op": "open", "client": client, "url": d.url, "opts": opts, "resume": resume})
}

// openNamespace makes client connect to the namespace nsp ("/other":
// io(url + "/other", opts)).
func (d *sioDriver) openNamespace(client, nsp string, opts map[string]any) {
	d.t.Helper()
	d.send(map[string]any{"op": "open", "client": client, "url": d.url + nsp, "opts": opts})
}

// next returns client's next event.
func (d *sioDriver) next(client string) sioEvent {
	d.t.Helper()
	select {
	case ev := <-d.queue(client):
		return ev
	case <-time.After(2 * wait):
		d.t.Fatalf("%s: nothing within %v", client, 2*wait)
	}
	return sioEvent{}
}

// expect returns client's next event of type typ, skipping upgrades.
func (d *sioDriver) expect(client, typ string) sioEvent {
	d.t.Helper()
	for {
		ev := d.next(client)
		if ev.Type == "upgrade" && typ != "upgrade" {
			d.mu.Lock()
			d.upgraded[client] = true
			d.mu.Unlock()
			continue
		}
		if ev.Type != typ {
			d.t.Fatalf("%s: got %+v, want a %s", client, ev, typ)
		}
		return ev
	}
}

// expectUpgrade waits until client has moved to WebSocket.
func (d *sioDriver) expectUpgrade(client string) {
	d.t.Helper()
	d.mu.Lock()
	seen := d.upgraded[client]
	d.mu.Unlock()
	if !seen {
		d.expect(client, "upgrade")
	}
}

// sioNotification is the data of a nueva_notificacion.
type sioNotification struct {
	ID, Type, Title, Body string
	CreatedAt             string `json:"created_at"`
}

// expectNotification returns the next nueva_notificacion of client.
func (d *sioDriver) expectNotification(client string) (sioNotification, sioEvent) {
	d.t.Helper()
	ev := d.expect(client, "event")
	if ev.Event != "nueva_notificacion" || len(ev.Args) != 1 {
		d.t.Fatalf("%s: got %+v, want nueva_notificacion with one argument", client, ev)
	}
	var n sioNotification
	if err := json.Unmarshal(ev.Args[0], &n); err != nil {
		d.t.Fatal(err)
	}
	return n, ev
}
