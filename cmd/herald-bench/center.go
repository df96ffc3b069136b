package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// --center-calls measures the notification center's calls as a browser
// makes them, over HTTP, on one employee's inbox (the bench's first
// employee) that --inbox filled with unread notifications before the
// server started: the first page of GET /notifications, GET
// /notifications/counts, and a state change of one item (read and unread
// in turn). Each call's time is the client's, from the request's first
// byte to the answer's last: HTTP, the token check, the store and the
// JSON, on loopback. The calls go in turn on one kept-alive connection,
// after a warm-up of centerWarmUp of each, so that noise falls on all of
// them alike. No stream is open and nothing is published meanwhile.

// centerWarmUp is how many calls of each kind run before the timed ones.
const centerWarmUp = 20

// Inbox seeding (--inbox): the notifications' type and publisher.
const (
	inboxType      = "bench.inbox"
	inboxPublisher = "herald-bench-inbox"
)

// CenterReport is the outcome of a --center-calls run.
type CenterReport struct {
	Tool    string                `json:"tool"`
	Format  string                `json:"format"`
	Time    string                `json:"time"`
	Command string                `json:"command"`
	Store   string                `json:"store"`
	Inbox   int                   `json:"inbox"`
	Calls   map[string]CallTiming `json:"calls"`
	LoadAvg string                `json:"loadavg"`
}

// CallTiming is one kind of call's timed answers, in milliseconds.
type CallTiming struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// timing summarises durations (which it sorts).
func timing(d []time.Duration) CallTiming {
	if len(d) == 0 {
		return CallTiming{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := min(len(d)-1, int(p*float64(len(d))))
		return float64(d[i].Microseconds()) / 1000
	}
	return CallTiming{N: len(d), P50: q(0.50), P99: q(0.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

// centerCall is one HTTP call of the center and the check of its answer.
type centerCall struct {
	name   string
	method string
	path   func(k int) string
	body   func(k int) string
	check  func(k int, answer []byte) error
}

// runCenter runs a --center-calls measurement and prints its report.
func runCenter(ctx context.Context, cfg config, command string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	r := newRunner(cfg, command, stderr)
	defer r.cleanup()
	load := loadAverage()
	if err := r.setup(ctx); err != nil {
		return err
	}
	m, err := newMinter(r.auth)
	if err != nil {
		return err
	}
	tok, err := m.employee(r.directory().id(0), time.Now())
	if err != nil {
		return err
	}
	calls, err := r.centerCalls(ctx, tok)
	if err != nil {
		return err
	}
	times := make([][]time.Duration, len(calls))
	for k := range centerWarmUp + cfg.CenterCalls {
		for i, c := range calls {
			var body io.Reader
			if c.body != nil {
				body = strings.NewReader(c.body(k))
			}
			req, err := http.NewRequestWithContext(ctx, c.method, r.urls[0]+c.path(k), body)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			start := time.Now()
			resp, err := r.client.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			answer, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("answered %d: %s", resp.StatusCode, answer)
			}
			if err == nil {
				err = c.check(k, answer)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if k >= centerWarmUp {
				times[i] = append(times[i], took)
			}
		}
	}
	rep := CenterReport{Tool: "herald-bench", Format: "center/1", Time: time.Now().UTC().Format(time.RFC3339),
		Command: command, Store: r.store, Inbox: cfg.Inbox, Calls: map[string]CallTiming{}, LoadAvg: load}
	for i, c := range calls {
		t := timing(times[i])
		rep.Calls[c.name] = t
		fmt.Fprintf(stderr, "%-8s %d calls: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", c.name, t.N, t.P50, t.P99, t.Max)
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// centerCalls builds the timed calls on the employee whose token is tok:
// the newest item is the one the state change marks.
func (r *runner) centerCalls(ctx context.Context, tok string) ([]centerCall, error) {
	status, body, err := doJSON(ctx, r.client, http.MethodGet, r.urls[0]+"/notifications?limit=1", tok, nil)
	if err != nil {
		return nil, err
	}
	var first struct {
		Notifications []struct {
			ID string `json:"id"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(body, &first); err != nil || status != http.StatusOK || len(first.Notifications) == 0 {
		return nil, fmt.Errorf("the first employee's inbox is empty or unreadable (%d: %.200s): seed it with --inbox", status, body)
	}
	ids := `{"ids":["` + first.Notifications[0].ID + `"]}`
	n := r.cfg.Inbox
	// Between calls the newest item is unread after an even state change
	// and read after an odd one; the counts see either.
	counts := func(_ int, answer []byte) error {
		var c struct {
			Unread int `json:"unread_count"`
		}
		if err := json.Unmarshal(answer, &c); err != nil {
			return err
		}
		if n > 0 && c.Unread != n && c.Unread != n-1 {
			return fmt.Errorf("unread_count %d, want %d or %d", c.Unread, n, n-1)
		}
		return nil
	}
	page := func(_ int, answer []byte) error {
		var p struct {
			Notifications []json.RawMessage `json:"notifications"`
		}
		if err := json.Unmarshal(answer, &p); err != nil {
			return err
		}
		if want := min(n, 50); n > 0 && len(p.Notifications) != want {
			return fmt.Errorf("%d items, want %d", len(p.Notifications), want)
		}
		return nil
	}
	marked := func(_ int, answer []byte) error {
		var m struct {
			Marked *int `json:"marked"`
		}
		if err := json.Unmarshal(answer, &m); err != nil || m.Marked == nil || *m.Marked != 1 {
			return fmt.Errorf("marked nothing: %s", answer)
		}
		return nil
	}
	return []centerCall{
		{name: "inbox", method: http.MethodGet, path: func(int) string { return "/notifications" }, check: page},
		{name: "counts", method: http.MethodGet, path: func(int) string { return "/notifications/counts" }, check: counts},
		{name: "state", method: http.MethodPost, path: func(k int) string {
			if k%2 == 0 {
				return "/notifications/read"
			}
			return "/notifications/unread"
		}, body: func(int) string { return ids }, check: marked},
	}, nil
}
