package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workerConfig is everything a group of streams needs, passed explicitly to
// a worker process as the first line of its standard input.
type workerConfig struct {
	Worker int `json:"worker"`
	// From and To are the global stream numbers [From, To) of this group.
	From           int           `json:"from"`
	To             int           `json:"to"`
	URLs           []string      `json:"urls"`
	SourceAddrs    []string      `json:"source_addrs"`
	Transport      string        `json:"transport"`
	Mode           string        `json:"mode"`
	Ephemeral      bool          `json:"ephemeral"`
	Directory      employees     `json:"directory"`
	Auth           authConfig    `json:"auth"`
	ConnectConc    int           `json:"connect_concurrency"`
	ConnectRate    float64       `json:"connect_rate"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// RunID marks this run's publishes; events of other runs are foreign.
	RunID string `json:"run_id"`
	// FreshDirectory says the employees were created by this run in a new
	// database, so a stream that saw no id yet is at 0.
	FreshDirectory bool `json:"fresh_directory"`
	// WarmCache makes one authenticated request per employee before the
	// ramp, so connects meet a warm directory cache on the server.
	WarmCache bool `json:"warm_cache"`
	// MaxPublishes sizes the per-publish slowest-delivery table (role and
	// broadcast modes).
	MaxPublishes int `json:"max_publishes"`
}

// The worker protocol. The parent writes the config as one JSON line on
// the worker's stdin, "open" once every worker is prepared, then "finish"
// when the run is over; the worker writes JSON lines on stdout: "prepared"
// (tokens minted, cache warmed), "connected" once its streams are open,
// "progress" every half second, "result" at the end. Standard input
// closing (the parent died) stops the worker too.
type workerMessage struct {
	Kind     string         `json:"kind"`
	Connect  *ConnectReport `json:"connect,omitempty"`
	Received int64          `json:"received,omitempty"`
	Result   *GroupResult   `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// Commands from the parent, one per line.
const (
	openCommand   = "open"
	finishCommand = "finish"
)

// runWorker is the hidden --worker mode.
func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("worker: read config: %w", err)
	}
	var cfg workerConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("worker: decode config: %w", err)
	}
	raiseFileLimit()
	enc := json.NewEncoder(stdout)
	var encMu sync.Mutex // guards enc: progress and the final messages share stdout
	send := func(m workerMessage) error {
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(m)
	}
	fail := func(err error) error {
		_ = send(workerMessage{Kind: "error", Error: err.Error()})
		return err
	}
	// The command reader ends when stdin closes (the parent finished or
	// died); the channel's close then tells the worker to stop.
	cmds := make(chan string, 4)
	go func() {
		defer close(cmds)
		for {
			l, err := in.ReadString('\n')
			if err != nil {
				return
			}
			cmds <- strings.TrimSpace(l)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	set, err := newStreamSet(cfg, log)
	if err != nil {
		return fail(err)
	}
	if err := set.Prepare(ctx); err != nil {
		return fail(err)
	}
	if err := send(workerMessage{Kind: "prepared"}); err != nil || !awaitCommand(ctx, cmds, openCommand, nil) {
		return nil // the parent is gone
	}
	rep, err := set.Open(ctx)
	if err != nil {
		return fail(err)
	}
	if err := send(workerMessage{Kind: "connected", Connect: &rep}); err != nil {
		return fmt.Errorf("worker: report: %w", err)
	}
	awaitCommand(ctx, cmds, finishCommand, func() { _ = send(workerMessage{Kind: "progress", Received: set.Received()}) })
	res := set.Finish()
	res.CPUSeconds = selfCPUSeconds()
	return send(workerMessage{Kind: "result", Result: &res})
}

// awaitCommand waits for the parent's command, calling tick every half
// second meanwhile (if set). It reports false when stdin closed or ctx
// ended first.
func awaitCommand(ctx context.Context, cmds <-chan string, want string, tick func()) bool {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case c, ok := <-cmds:
			if !ok {
				return false
			}
			if c == want {
				return true
			}
		case <-t.C:
			if tick != nil {
				tick()
			}
		case <-ctx.Done():
			return false
		}
	}
}

// group is a share of the streams: held in this process or by a worker.
type group interface {
	// Prepare does what must precede the ramp (minting tokens).
	Prepare(ctx context.Context) error
	// Open opens the group's streams and returns when each has tried once.
	Open(ctx context.Context) (ConnectReport, error)
	// Received is the group's count of events so far.
	Received() int64
	// Finish stops the streams and returns what they received.
	Finish(ctx context.Context) (GroupResult, error)
	// Close releases the group (kills a worker that is still running).
	Close()
}

// localGroup holds streams in this process.
type localGroup struct{ set *streamSet }

func (g *localGroup) Prepare(ctx context.Context) error               { return g.set.Prepare(ctx) }
func (g *localGroup) Open(ctx context.Context) (ConnectReport, error) { return g.set.Open(ctx) }
func (g *localGroup) Received() int64                                 { return g.set.Received() }
func (g *localGroup) Close()                                          {}

func (g *localGroup) Finish(context.Context) (GroupResult, error) {
	res := g.set.Finish()
	return res, nil
}

// procGroup is a worker process running this same binary with --worker.
type procGroup struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	received atomic.Int64
	msgs     chan workerMessage // connected, result, error; closed when stdout ends
	exited   chan error
}

// startWorker starts a worker process for cfg. Its stderr is the parent's.
func startWorker(self string, cfg workerConfig, stderr io.Writer) (*procGroup, error) {
	cmd := exec.Command(self, "--worker")
	cmd.Stderr = stderr
	cmd.SysProcAttr = childAttrs()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", cfg.Worker, err)
	}
	g := &procGroup{cmd: cmd, stdin: stdin, msgs: make(chan workerMessage, 4), exited: make(chan error, 1)}
	line, _ := json.Marshal(cfg)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		g.Close()
		return nil, fmt.Errorf("configure worker %d: %w", cfg.Worker, err)
	}
	// The reader goroutine ends when the worker's stdout closes (it exited
	// or was killed); it then reaps the process.
	go func() {
		defer close(g.msgs)
		dec := json.NewDecoder(stdout)
		for {
			var m workerMessage
			if err := dec.Decode(&m); err != nil {
				break
			}
			if m.Kind == "progress" {
				g.received.Store(m.Received)
				continue
			}
			g.msgs <- m
		}
		g.exited <- cmd.Wait()
	}()
	return g, nil
}

// await returns the worker's next message of kind, or its failure.
func (g *procGroup) await(ctx context.Context, kind string) (workerMessage, error) {
	select {
	case m, ok := <-g.msgs:
		switch {
		case !ok:
			return workerMessage{}, fmt.Errorf("worker exited before %q: %v", kind, <-g.exited)
		case m.Kind == "error":
			return workerMessage{}, errors.New("worker: " + m.Error)
		case m.Kind != kind:
			return workerMessage{}, fmt.Errorf("worker sent %q, want %q", m.Kind, kind)
		}
		return m, nil
	case <-ctx.Done():
		return workerMessage{}, ctx.Err()
	}
}

func (g *procGroup) Prepare(ctx context.Context) error {
	_, err := g.await(ctx, "prepared")
	return err
}

func (g *procGroup) Open(ctx context.Context) (ConnectReport, error) {
	if _, err := io.WriteString(g.stdin, openCommand+"\n"); err != nil {
		return ConnectReport{}, fmt.Errorf("tell worker to open: %w", err)
	}
	m, err := g.await(ctx, "connected")
	if err != nil {
		return ConnectReport{}, err
	}
	if m.Connect.Latency == nil {
		m.Connect.Latency = NewHist()
	}
	return *m.Connect, nil
}

func (g *procGroup) Received() int64 { return g.received.Load() }

func (g *procGroup) Finish(ctx context.Context) (GroupResult, error) {
	// A worker stopped by SIGINT (Ctrl-C reaches the whole process group)
	// has already sent its result and exited: the write then fails, but
	// the result is waiting.
	_, werr := io.WriteString(g.stdin, finishCommand+"\n")
	m, err := g.await(ctx, "result")
	if err != nil {
		return GroupResult{}, errors.Join(err, werr)
	}
	return *m.Result, nil
}

// Close closes the worker's stdin (a worker that is still running stops and
// reports) and kills it if it has not exited within a few seconds.
func (g *procGroup) Close() {
	g.stdin.Close()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-g.msgs: // drain until the reader goroutine ends
			if !ok {
				return
			}
		case <-timer.C:
			_ = g.cmd.Process.Kill()
		}
	}
}

// selfExecutable is the path workers are started from.
func selfExecutable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable for workers: %w", err)
	}
	return p, nil
}
