package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/sse"
)

type wsFrame struct {
	Event string          `json:"event"`
	ID    string          `json:"id"`
	Data  json.RawMessage `json:"data"`
}

// dialWS opens /ws with header pairs; on a refused upgrade it returns the
// HTTP status and body.
func dialWS(t *testing.T, e *env, query string, header ...string) (*websocket.Conn, int, []byte) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+"/ws"+query, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, body
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols, nil
}

func mustDialWS(t *testing.T, e *env, user, query string, header ...string) *websocket.Conn {
	t.Helper()
	c, status, body := dialWS(t, e, query, append([]string{"Authorization", "Bearer " + e.token(user)}, header...)...)
	if c == nil {
		t.Fatalf("ws for %s: %d %s", user, status, body)
	}
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) wsFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text", typ)
	}
	var f wsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

func TestWSNotificationFrames(t *testing.T) {
	e := newEnv(t)
	c := mustDialWS(t, e, "user2", "")
	waitFor(t, "the ws stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
	e.mustPublish("Hello", 2)
	f := readFrame(t, c)
	var n struct{ ID, Type, Title, CreatedAt string }
	json.Unmarshal(f.Data, &n)
	if f.Event != "notification" || f.ID != "1" || n.ID != "1" || n.Title != "Hello" || n.Type != "test.note" {
		t.Fatalf("frame = %+v", f)
	}
	// Ephemeral: no id.
	e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "persist": false, "event": "typing", "type": "t", "title": "x"})
	if f := readFrame(t, c); f.Event != "typing" || f.ID != "" {
		t.Fatalf("ephemeral frame = %+v", f)
	}
}

func TestWSResume(t *testing.T) {
	e := newEnv(t)
	e.seed(2, 4)
	c := mustDialWS(t, e, "user2", "?lastEventId=2")
	for _, want := range []string{"3", "4"} {
		if f := readFrame(t, c); f.ID != want {
			t.Fatalf("replayed frame id %q, want %s", f.ID, want)
		}
	}
	e.mustPublish("live", 2)
	if f := readFrame(t, c); f.ID != "5" {
		t.Fatalf("live frame id %q, want 5", f.ID)
	}
}

func TestWSAuthAndOrigin(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no token", nil, 401, "missing_token"},
		{"bad token", []string{"Authorization", "Bearer x"}, 401, "invalid_token"},
		{"service", []string{"Authorization", "Bearer " + e.service()}, 403, "forbidden"},
		{"foreign origin", []string{"Authorization", "Bearer " + e.token("user2"), "Origin", "https://evil.example"}, 403, "forbidden"},
		{"allowed origin, other scheme", []string{"Authorization", "Bearer " + e.token("user2"), "Origin", "http://app.example.com"}, 403, "forbidden"},
		{"null origin (sandboxed page)", []string{"Authorization", "Bearer " + e.token("user2"), "Origin", "null"}, 403, "forbidden"},
		{"unparsable origin", []string{"Authorization", "Bearer " + e.token("user2"), "Origin", "https://%zz"}, 403, "forbidden"},
		{"bad resume", []string{"Authorization", "Bearer " + e.token("user2"), "Last-Event-ID", "x"}, 400, "invalid_request"},
	}
	for _, tt := range tests {
		c, status, body := dialWS(t, e, "", tt.header...)
		if c != nil || status != tt.status || problem(t, body).Code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, body, tt.status, tt.code)
		}
	}
	mustDialWS(t, e, "user2", "", "Origin", origin).CloseNow()
	// Not a WebSocket handshake: a problem, before any stream opens.
	if status, _, body := e.do("GET", "/ws", e.token("user2"), nil); status != 400 || problem(t, body).Code != "invalid_request" {
		t.Fatalf("plain GET /ws: %d %s, want 400 invalid_request", status, body)
	}
	c, status, body := dialWS(t, e, "", "Cookie", "token="+e.token("user3"))
	if c == nil {
		t.Fatalf("cookie auth: %d %s", status, body)
	}
}

func TestWSTokenExpiry(t *testing.T) {
	e := newEnv(t)
	c, status, body := dialWS(t, e, "", "Authorization", "Bearer "+e.tokenTTL("user2", shortTTL))
	if c == nil {
		t.Fatalf("dial: %d %s", status, body)
	}
	if f := readFrameWithin(t, c, shortTTL+wait); f.Event != "token_expired" {
		t.Fatalf("frame %+v, want token_expired", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != 4001 {
		t.Fatalf("close status %d (%v), want 4001", code, err)
	}
}

func TestWSShutdownAndHeartbeat(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.heartbeat = 30 * time.Millisecond })
	c := mustDialWS(t, e, "user2", "")
	// Pings flow while the client reads; the stream stays up across several.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, err := c.Read(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read during heartbeats: %v", err)
	}
	// coder/websocket closes the connection when a read is cancelled; open another.
	c = mustDialWS(t, e, "user2", "")
	waitFor(t, "the ws stream", func() bool { n, _ := e.Hub.Stats(); return n >= 1 })
	e.Hub.Close()
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusServiceRestart {
		t.Fatalf("close status on shutdown %d (%v), want 1012", code, err)
	}
}

func TestWSAndSSEShareTheLimit(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		e.stream("user2")
		mustDialWS(t, e, "user2", "")
	}
	_, status, body := dialWS(t, e, "", "Authorization", "Bearer "+e.token("user2"))
	if status != 429 || problem(t, body).Code != "too_many_connections" {
		t.Fatalf("11th stream over ws: %d %s", status, body)
	}
	_, resp, _ := heraldtest.OpenStream(t, e.URL+"/events", e.token("user2"))
	if resp.StatusCode != 429 {
		t.Fatalf("11th stream over sse: %d", resp.StatusCode)
	}
}

func TestWSMaxStreamAge(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.hubOpts = []sse.Option{sse.WithMaxAge(300 * time.Millisecond)} })
	c := mustDialWS(t, e, "user2", "")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("close status %d (%v), want 1001", code, err)
	}
}
