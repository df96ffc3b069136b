package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/corp/herald/internal/heraldtest"
)

// TestStreamOriginRefusedBothTransports: a null origin (sandboxed pages,
// file: URLs, some redirects) and an origin that does not parse are
// refused on /events and /ws alike, 403 forbidden, and open no stream.
func TestStreamOriginRefusedBothTransports(t *testing.T) {
	e := newEnv(t)
	tok := e.token("user2")
	for _, o := range []string{"null", "https://%zz", "http://[::1", "file://", "app.example.com", "https://evil.example"} {
		_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", tok, "Origin", o)
		if resp.StatusCode != http.StatusForbidden || problem(t, body).Code != "forbidden" {
			t.Errorf("/events, Origin %q: %d %s, want 403 forbidden", o, resp.StatusCode, body)
		}
		c, status, body := dialWS(t, e, "", "Authorization", "Bearer "+tok, "Origin", o)
		if c != nil || status != http.StatusForbidden || problem(t, body).Code != "forbidden" {
			t.Errorf("/ws, Origin %q: %d %s, want 403 forbidden", o, status, body)
		}
	}
	if n, _ := e.Hub.Stats(); n != 0 {
		t.Fatalf("%d streams opened for refused origins", n)
	}
}

// TestIdempotencyKeyEveryField: a key reused with a body that differs in
// any one field is refused (422, nothing stored); spelling out defaults is
// the same request (the first answer, replayed).
func TestIdempotencyKeyEveryField(t *testing.T) {
	e := newEnv(t)
	persisted := func() map[string]any {
		return map[string]any{
			"to":   map[string]any{"employees": []int{2}, "emails": []string{"user3@corp.example"}, "roles": []string{"staff"}},
			"type": "t", "title": "title", "body": "body", "data": map[string]any{"a": 1},
		}
	}
	ephemeral := func() map[string]any {
		b := persisted()
		b["persist"], b["event"] = false, "typing"
		return b
	}
	to := func(b map[string]any) map[string]any { return b["to"].(map[string]any) }
	for _, tt := range []struct {
		name   string
		base   func() map[string]any
		change func(map[string]any)
		status int // 422 refused, 201/202 replayed
	}{
		{"to.employees", persisted, func(b map[string]any) { to(b)["employees"] = []int{2, 4} }, 422},
		{"to.emails", persisted, func(b map[string]any) { to(b)["emails"] = []string{"user4@corp.example"} }, 422},
		{"to.roles", persisted, func(b map[string]any) { to(b)["roles"] = []string{"admin"} }, 422},
		{"to.all", persisted, func(b map[string]any) { to(b)["all"] = true }, 422},
		{"type", persisted, func(b map[string]any) { b["type"] = "u" }, 422},
		{"title", persisted, func(b map[string]any) { b["title"] = "other" }, 422},
		{"body", persisted, func(b map[string]any) { b["body"] = "other" }, 422},
		{"body removed", persisted, func(b map[string]any) { delete(b, "body") }, 422},
		{"data value", persisted, func(b map[string]any) { b["data"] = map[string]any{"a": 2} }, 422},
		{"data key added", persisted, func(b map[string]any) { b["data"] = map[string]any{"a": 1, "b": 1} }, 422},
		{"persist", persisted, func(b map[string]any) { b["persist"] = false }, 422},
		{"event", ephemeral, func(b map[string]any) { b["event"] = "typed" }, 422},
		{"ephemeral persist", ephemeral, func(b map[string]any) { b["persist"] = true; delete(b, "event") }, 422},
		{"defaults spelled out", persisted, func(b map[string]any) { b["persist"], b["event"], to(b)["all"] = true, "notification", false }, 201},
		{"ephemeral, same", ephemeral, func(map[string]any) {}, 202},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := "key-" + strings.NewReplacer(" ", "-", ",", "").Replace(tt.name)
			status, _, first := e.do(http.MethodPost, "/notifications", e.service(), tt.base(), "Idempotency-Key", key)
			if status != 201 && status != 202 {
				t.Fatalf("first publish: %d %s", status, first)
			}
			head, _ := e.Store.Head(context.Background(), 2)
			b := tt.base()
			tt.change(b)
			status, hdr, out := e.do(http.MethodPost, "/notifications", e.service(), b, "Idempotency-Key", key)
			if status != tt.status {
				t.Fatalf("retry with %s changed: %d %s, want %d", tt.name, status, out, tt.status)
			}
			if status == 422 {
				if p := problem(t, out); p.Code != "invalid_request" || fmt.Sprint(p.Fields()) != "[Idempotency-Key]" {
					t.Fatalf("refusal %s, want invalid_request on Idempotency-Key", out)
				}
			} else if hdr.Get("Idempotent-Replayed") != "true" || string(out) != string(first) {
				t.Fatalf("same request: %s (replayed %q), want the first answer %s", out, hdr.Get("Idempotent-Replayed"), first)
			}
			if now, _ := e.Store.Head(context.Background(), 2); now != head {
				t.Fatalf("the retry stored something: head %d → %d", head, now)
			}
		})
	}
}

// TestDrainMakesNotReady: once draining (SIGTERM), /readyz answers 503
// unavailable with Retry-After at once, while /healthz stays 200, open
// streams stay up and publishes still work until the server shuts down.
func TestDrainMakesNotReady(t *testing.T) {
	e := newEnv(t)
	if status, _, out := e.do(http.MethodGet, "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz before draining: %d %s", status, out)
	}
	s := e.stream("user2")
	defer s.Close()
	e.Handler.Drain()
	status, hdr, out := e.do(http.MethodGet, "/readyz", "", nil)
	if status != http.StatusServiceUnavailable || problem(t, out).Code != "unavailable" || hdr.Get("Retry-After") == "" {
		t.Fatalf("readyz while draining: %d %v %s, want 503 unavailable with Retry-After", status, hdr, out)
	}
	if status, _, out := e.do(http.MethodGet, "/readyz", e.token("user2"), nil); status != 503 || problem(t, out).Detail != "shutting down" {
		t.Fatalf("readyz while draining, with a token: %d %s, want 503 shutting down", status, out)
	}
	if status, _, out := e.do(http.MethodGet, "/healthz", "", nil); status != 200 {
		t.Fatalf("healthz while draining: %d %s", status, out)
	}
	e.mustPublish("while draining", 2)
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != "while draining" {
		t.Fatalf("stream while draining got %+v", m)
	}
	e.Handler.Drain() // twice is fine
	if status, _, _ := e.do(http.MethodGet, "/readyz", "", nil); status != 503 {
		t.Fatalf("readyz after a second Drain: %d", status)
	}
}

// TestWSEmployeeDeletedCloses: deleting an employee ends their WebSocket
// with close code 1008 and its reason; another employee's stays up.
func TestWSEmployeeDeletedCloses(t *testing.T) {
	e := newEnv(t)
	gone := mustDialWS(t, e, "user2", "")
	kept := mustDialWS(t, e, "user3", "")
	waitFor(t, "both streams", func() bool { n, _ := e.Hub.Stats(); return n == 2 })
	if status, _, out := e.do(http.MethodDelete, "/employees/2", e.directory(), nil); status != 204 {
		t.Fatalf("delete employee 2: %d %s", status, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, err := gone.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "employee removed" {
		t.Fatalf("deleted employee's socket: %v, want close 1008 employee removed", err)
	}
	e.mustPublish("still here", 3)
	if f := readFrame(t, kept); f.Event != "notification" {
		t.Fatalf("other employee's socket got %+v", f)
	}
}

// shortTTL is the lifetime of tokens that tests let expire. A token's exp
// is in whole seconds, so it leaves between 9 and 10 s: enough to connect
// on a loaded 2-core machine (opening a stream there has taken over 3 s
// under the race detector), short enough to wait for.
const shortTTL = 10 * time.Second

// readFrameWithin is readFrame with its own timeout.
func readFrameWithin(t *testing.T, c *websocket.Conn, d time.Duration) wsFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var f wsFrame
	if typ != websocket.MessageText || json.Unmarshal(b, &f) != nil {
		t.Fatalf("frame %v %s, want a JSON text frame", typ, b)
	}
	return f
}
