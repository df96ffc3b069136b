package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// `herald-bench floor` is the least a Go server can do for the bench's
// ephemeral load: the same HTTP/1.1 streams and publishes over loopback,
// with no authentication, no store and no directory. The bench measures it
// like Herald (--url, --server-pid), so the CPU it spends per message is
// the floor under Herald's on this machine: what net/http, the Go runtime
// and the kernel's loopback TCP cost for one publish and one event. By
// default it is written the way a plain Go SSE server is: a goroutine per
// stream blocked in its handler, events written and flushed from the
// publishing request. --hold epoll|nbio takes each stream's connection over
// instead (the two designs Herald's poller was chosen between, as
// prototypes); --epoll drops net/http for one event loop
// (floor_epoll_linux.go).
//
//	herald-bench floor --addr 127.0.0.1:3999 &
//	herald-bench --url http://127.0.0.1:3999 --server-pid $! --jwt-secret x --seed=false \
//	    --streams 10000 --rate 1000 --duration 20s --ephemeral
const floorUsage = `Usage: herald-bench floor [--addr 127.0.0.1:0] [--heartbeat 15s] [--hold goroutine|epoll|nbio | --epoll]`

func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, floorUsage); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	beat := fs.Duration("heartbeat", 15*time.Second, "a comment to every stream this often, spread over the interval, as Herald's heartbeat")
	epoll := fs.Bool("epoll", false, "serve on one OS thread and one epoll set instead of net/http (floor_epoll_linux.go)")
	hold := fs.String("hold", "goroutine", "how the net/http floor holds an open stream: goroutine (its handler blocks), epoll (taken over onto one epoll set, as Herald's engine does) or nbio (taken over by github.com/lesismal/nbio)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *epoll {
		if *hold != "goroutine" {
			return errors.New("--epoll serves without net/http: it takes no --hold")
		}
		return runEpollFloor(ctx, *addr, *beat, stdout)
	}
	f := &floor{streams: map[int64]*floorStream{}}
	switch *hold {
	case "goroutine":
	case "epoll", "nbio":
		h, err := newHolder(*hold)
		if err != nil {
			return err
		}
		defer h.stop()
		f.holder = h
	default:
		return fmt.Errorf("--hold %q: goroutine, epoll or nbio", *hold)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "floor: http://%s pid %d\n", ln.Addr(), os.Getpid())
	done := make(chan struct{})
	freed := make(chan struct{})
	go func() { defer close(done); f.heartbeats(ctx, *beat) }()
	go func() { defer close(freed); f.burst.run(ctx) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	err = srv.Serve(ln)
	<-done
	<-freed
	// srv.Close does not wait for handlers: take-overs still running finish
	// before the holder stops (deferred above).
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	f.takeovers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type floor struct {
	mu      sync.Mutex
	streams map[int64]*floorStream
	holder  streamHolder // nil: each stream's handler blocks until it ends
	burst   burstFree

	closing   bool           // under mu: no take-over starts
	takeovers sync.WaitGroup // take-overs in progress
}

type floorStream struct {
	mu sync.Mutex
	w  io.Writer                // nil once the stream has ended
	rc *http.ResponseController // nil for a taken-over stream
}

func (s *floorStream) write(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return
	}
	if _, err := s.w.Write(b); err == nil && s.rc != nil {
		_ = s.rc.Flush()
	}
}

// end stops every later write: the stream's response or socket is gone.
func (s *floorStream) end() {
	s.mu.Lock()
	s.w, s.rc = nil, nil
	s.mu.Unlock()
}

// A streamHolder keeps streams whose connections were taken over from
// net/http, without a goroutine each: the prototypes of the two designs
// Herald's engine chose between (its own epoll set, or nbio). hold takes the
// hijacked connection over and returns what writes to it (non-blocking,
// what the socket cannot take kept in a buffer); gone is called once the
// client has left, before the connection is closed.
type streamHolder interface {
	hold(nc net.Conn, gone func()) (io.Writer, error)
	stop()
}

// burstFree returns a burst's garbage to the OS as Herald does: once 1,000
// streams have opened and none has for 3 s, debug.FreeOSMemory once. Without
// it the floors' memory per stream would count the handshakes' garbage that
// Herald's does not.
type burstFree struct {
	mu     sync.Mutex
	opened int
	last   time.Time
}

func (b *burstFree) opened1() {
	b.mu.Lock()
	b.opened++
	b.last = time.Now()
	b.mu.Unlock()
}

func (b *burstFree) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		due := b.opened >= 1000 && time.Since(b.last) >= 3*time.Second
		if due {
			b.opened = 0
		}
		b.mu.Unlock()
		if due {
			debug.FreeOSMemory()
		}
	}
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/events":
		f.stream(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/notifications":
		f.publish(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/notifications": // the bench's preflight
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[]}`)
	case r.URL.Path == "/metrics":
		f.mu.Lock()
		n := len(f.streams)
		f.mu.Unlock()
		fmt.Fprintf(w, "herald_streams_open %d\n", n)
	default:
		http.NotFound(w, r)
	}
}

// stream holds GET /events open for the employee the token's `user` names
// (bench<ID>); the signature is not checked.
func (f *floor) stream(w http.ResponseWriter, r *http.Request) {
	id, ok := floorEmployee(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if !ok {
		http.Error(w, "no employee", http.StatusUnauthorized)
		return
	}
	f.burst.opened1()
	if f.holder != nil {
		f.takeOver(w, id)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	s := &floorStream{w: w, rc: http.NewResponseController(w)}
	// Registered before the preamble is written, and with the stream's lock
	// held while it is: a client that has read the preamble is reachable by
	// the next publish, and no event can go out ahead of the preamble.
	s.mu.Lock()
	f.register(id, s)
	if _, err := io.WriteString(s.w, "retry: 5000\n: connected\n\n"); err == nil {
		_ = s.rc.Flush()
	}
	s.mu.Unlock()
	<-r.Context().Done()
	f.forget(id, s)
	s.end() // a heartbeat that picked the stream before may not write to a finished response
}

func (f *floor) register(id int64, s *floorStream) {
	f.mu.Lock()
	f.streams[id] = s
	f.mu.Unlock()
}

func (f *floor) forget(id int64, s *floorStream) {
	f.mu.Lock()
	if f.streams[id] == s {
		delete(f.streams, id)
	}
	f.mu.Unlock()
}

// takeOver answers GET /events on the hijacked connection itself (no
// chunked framing: the stream ends when the connection does) and hands the
// connection to the holder; the handler's goroutine returns.
func (f *floor) takeOver(w http.ResponseWriter, id int64) {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	f.takeovers.Add(1)
	f.mu.Unlock()
	defer f.takeovers.Done()
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Registered first, as above; publishes wait on the stream's lock until
	// it can write.
	s := &floorStream{}
	s.mu.Lock()
	defer s.mu.Unlock()
	f.register(id, s)
	if _, err := io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\nretry: 5000\n: connected\n\n"); err != nil {
		nc.Close()
		f.forget(id, s)
		return
	}
	wr, err := f.holder.hold(nc, func() {
		f.forget(id, s)
		s.end()
	})
	if err != nil {
		f.forget(id, s)
		return
	}
	s.w = wr
}

func floorEmployee(token string) (int64, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	var c struct {
		User string `json:"user"`
	}
	if json.Unmarshal(payload, &c) != nil || !strings.HasPrefix(c.User, "bench") {
		return 0, false
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(c.User, "bench"), 10, 64)
	return id, err == nil
}

// floorMessage is what the floors read from a publish: its recipients
// (employee IDs, or everyone) and the event to write to their streams.
type floorMessage struct {
	all       bool
	employees []int64
	frame     []byte
}

// decodeFloorPublish decodes a publish body into the event the floors write.
func decodeFloorPublish(body []byte) (floorMessage, error) {
	var m struct {
		To struct {
			Employees []int64 `json:"employees"`
			All       bool    `json:"all"`
		} `json:"to"`
		Type  string          `json:"type"`
		Title string          `json:"title"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return floorMessage{}, err
	}
	ev, err := json.Marshal(struct {
		Type  string          `json:"type"`
		Title string          `json:"title"`
		Data  json.RawMessage `json:"data,omitempty"`
	}{m.Type, m.Title, m.Data})
	if err != nil {
		return floorMessage{}, err
	}
	frame := append(append([]byte("event: notification\ndata: "), ev...), "\n\n"...)
	return floorMessage{all: m.To.All, employees: m.To.Employees, frame: frame}, nil
}

// floorRecipients is the streams m goes to: every one for a publish to
// everyone, else those of the employees it names that have one.
func floorRecipients[S any](streams map[int64]S, m floorMessage) iter.Seq[S] {
	return func(yield func(S) bool) {
		if m.all {
			for _, s := range streams {
				if !yield(s) {
					return
				}
			}
			return
		}
		for _, id := range m.employees {
			if s, ok := streams[id]; ok && !yield(s) {
				return
			}
		}
	}
}

// publish decodes a publish to employees (or to everyone) and writes its
// event to their streams at once.
func (f *floor) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, err := decodeFloorPublish(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	to := slices.Collect(floorRecipients(f.streams, m))
	f.mu.Unlock()
	for _, s := range to {
		s.write(m.frame)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"recipients":%d}`, len(to))
}

// heartbeats writes a comment to every stream once per interval, a slice
// of them every 100 ms, until ctx ends.
func (f *floor) heartbeats(ctx context.Context, interval time.Duration) {
	const tick = 100 * time.Millisecond
	slices := max(1, int(interval/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var due []*floorStream
		f.mu.Lock()
		for id, s := range f.streams {
			if int(id%int64(slices)) == k%slices {
				due = append(due, s)
			}
		}
		f.mu.Unlock()
		for _, s := range due {
			s.write([]byte(":\n\n"))
		}
	}
}
