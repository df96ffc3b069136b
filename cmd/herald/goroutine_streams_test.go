package main_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/corp/herald/internal/heraldtest"
)

// goroutines reads go_goroutines from /metrics.
func goroutines(t *testing.T, p *proc) int {
	t.Helper()
	status, _, out := heraldtest.Do(t, "GET", p.URL+"/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)$`).FindSubmatch(out)
	if status != 200 || m == nil {
		t.Fatalf("metrics: %d, no go_goroutines", status)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestGoroutineStreamsMode runs the binary with GOROUTINE_STREAMS on and
// off: either way SSE and WebSocket streams get notifications and
// heartbeats; with it on, each open stream holds a goroutine (so the
// setting reaches the engine), with it off, idle streams hold none.
func TestGoroutineStreamsMode(t *testing.T) {
	const streams = 20
	for _, tt := range []struct {
		value   string
		perConn bool
	}{{"true", true}, {"false", false}} {
		t.Run("GOROUTINE_STREAMS="+tt.value, func(t *testing.T) {
			p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "HEARTBEAT_INTERVAL=1s", "GOROUTINE_STREAMS="+tt.value)
			svc := mint(t, "hr-sync", "service", "Directory.Write")
			if status, _, out := heraldtest.Do(t, "PUT", p.URL+"/employees/12", svc, map[string]any{"email": "ana@corp.example", "username": "ana"}); status != 201 {
				t.Fatalf("PUT employee: %d %s", status, out)
			}
			ana := mint(t, "ana")
			before := goroutines(t, p)
			var open []*heraldtest.Stream
			for range streams / 2 { // the per-employee limit is 10
				open = append(open, heraldtest.MustOpenStream(t, p.URL+"/events", ana))
			}
			// Another employee's WebSocket, opened with a token too.
			if status, _, out := heraldtest.Do(t, "PUT", p.URL+"/employees/15", svc, map[string]any{"email": "ben@corp.example", "username": "ben"}); status != 201 {
				t.Fatalf("PUT employee: %d %s", status, out)
			}
			ben := mint(t, "ben")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.URL, "http")+"/ws", &websocket.DialOptions{
				HTTPHeader: map[string][]string{"Authorization": {"Bearer " + ben}}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			for range streams/2 - 1 { // and the WebSocket: 10 streams
				open = append(open, heraldtest.MustOpenStream(t, p.URL+"/events", ben))
			}
			grew := goroutines(t, p) - before
			if tt.perConn && grew < streams {
				t.Fatalf("%d streams added %d goroutines; GOROUTINE_STREAMS=true should hold one each", streams, grew)
			}
			if !tt.perConn && grew > 10 {
				t.Fatalf("%d idle streams added %d goroutines; the poller should hold them", streams, grew)
			}
			status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", svc, map[string]any{
				"to": map[string]any{"employees": []int{12, 15}}, "type": "t", "title": "both modes"})
			if status != 201 {
				t.Fatalf("publish: %d %s", status, out)
			}
			for i, s := range open {
				m := s.MustNext(t, 10*time.Second)
				if m.ID != "1" || !strings.Contains(m.Data, `"title":"both modes"`) {
					t.Fatalf("stream %d got %+v", i, m)
				}
			}
			_, b, err := ws.Read(ctx)
			if err != nil || !strings.Contains(string(b), `"title":"both modes"`) {
				t.Fatalf("ws: %s %v", b, err)
			}
			if hb, err := open[0].NextBlock(5 * time.Second); err != nil || hb.Dispatched() {
				t.Fatalf("no heartbeat within HEARTBEAT_INTERVAL: %+v %v", hb, err)
			}
			for _, s := range open {
				s.Close()
			}
		})
	}
}
