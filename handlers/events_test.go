package handlers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/sse"
)

// rawStream opens /events over a plain TCP connection and returns a reader
// positioned after the response headers, so tests see the exact bytes.
func rawStream(t *testing.T, e *env, token, extra string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n", token, extra)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, bufio.NewReader(resp.Body), conn
}

func readExactly(t *testing.T, conn net.Conn, r io.Reader, n int) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, buf)
	}
	return string(buf)
}

func TestStreamHeadersAndBytes(t *testing.T) {
	e := newEnv(t)
	resp, body, conn := rawStream(t, e, e.token("user2"), "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	preamble := "retry: 3000\n: connected\nid: 0\n\n"
	if got := readExactly(t, conn, body, len(preamble)); got != preamble {
		t.Fatalf("first bytes = %q, want %q", got, preamble)
	}
	ans := e.mustPublish("Hello", 2)
	if ans.ID == "" || ans.Recipients != 1 {
		t.Fatalf("publish answer %+v", ans)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "\n\n") {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (so far %q)", err, got.String())
		}
		got.WriteString(line)
	}
	re := regexp.MustCompile(`^id: 1\nevent: notification\ndata: \{"id":"1","type":"test\.note","title":"Hello","body":"","data":\{\},"created_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"\}\n\n$`)
	m := re.FindStringSubmatch(got.String())
	if m == nil {
		t.Fatalf("event bytes = %q\nwant id: 1, event: notification and the data of the SPEC", got.String())
	}
	if ts, err := time.Parse(time.RFC3339, m[1]); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("created_at %q is not a recent RFC 3339 time", m[1])
	}
}

func TestStreamDeliversOnlyOwnNotifications(t *testing.T) {
	e := newEnv(t)
	s2, s3 := e.stream("user2"), e.stream("user3")
	tab2 := e.stream("user2@corp.example") // a second tab, logged in by email
	e.mustPublish("for 2", 2)
	e.mustPublish("for 3", 3)
	e.mustPublish("for both", 2, 3)
	for name, tc := range map[string]struct {
		s    *heraldtest.Stream
		want []string
	}{"user2": {s2, []string{"for 2", "for both"}}, "user2 tab": {tab2, []string{"for 2", "for both"}}, "user3": {s3, []string{"for 3", "for both"}}} {
		for i, want := range tc.want {
			m := tc.s.MustNext(t, wait)
			var n struct{ ID, Title string }
			json.Unmarshal([]byte(m.Data), &n)
			if n.Title != want || n.ID != m.ID || m.ID != strconv.Itoa(i+1) {
				t.Fatalf("%s event %d = id %q %s, want %q with id %d", name, i, m.ID, m.Data, want, i+1)
			}
			if strings.Contains(m.Data, `"employee`) {
				t.Fatalf("%s: an employee ID leaked into the stream: %s", name, m.Data)
			}
		}
		tc.s.ExpectQuiet(t, 100*time.Millisecond)
	}
}

func TestResume(t *testing.T) {
	e := newEnv(t)
	e.seed(2, 5)
	tests := []struct {
		name    string
		header  []string
		query   string
		wantIDs []string
	}{
		{"Last-Event-ID header", []string{"Last-Event-ID", "3"}, "", []string{"4", "5"}},
		{"lastEventId query", nil, "?lastEventId=2", []string{"3", "4", "5"}},
		{"header wins over query", []string{"Last-Event-ID", "4"}, "?lastEventId=1", []string{"5"}},
		{"zero replays everything", nil, "?lastEventId=0", []string{"1", "2", "3", "4", "5"}},
		{"at head replays nothing", []string{"Last-Event-ID", "5"}, "", nil},
		{"beyond head (old database) replays nothing", []string{"Last-Event-ID", "900"}, "", nil},
		{"fresh connect replays nothing", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := heraldtest.MustOpenStream(t, e.URL+"/events"+tt.query, e.token("user2"), tt.header...)
			for _, want := range tt.wantIDs {
				if m := s.MustNext(t, wait); m.ID != want || m.Event != "notification" {
					t.Fatalf("replayed id %q event %q, want id %s", m.ID, m.Event, want)
				}
			}
			s.ExpectQuiet(t, 50*time.Millisecond)
			s.Close()
		})
	}
	// After a resume beyond head, new notifications still arrive.
	s := heraldtest.MustOpenStream(t, e.URL+"/events", e.token("user2"), "Last-Event-ID", "900")
	e.mustPublish("after reset", 2)
	if m := s.MustNext(t, wait); m.ID != "6" {
		t.Fatalf("live event after a resume beyond head has id %q, want 6", m.ID)
	}
}

func TestResumeInvalid(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, header, field string }{
		{"?lastEventId=abc", "", "lastEventId"},
		{"?lastEventId=-1", "", "lastEventId"},
		{"", "x1", "Last-Event-ID"},
	} {
		var hdr []string
		if tc.header != "" {
			hdr = []string{"Last-Event-ID", tc.header}
		}
		s, resp, body := heraldtest.OpenStream(t, e.URL+"/events"+tc.query, e.token("user2"), hdr...)
		if s != nil || resp.StatusCode != 400 {
			t.Fatalf("%q/%q: status %d, want 400", tc.query, tc.header, resp.StatusCode)
		}
		if p := problem(t, body); p.Code != "invalid_request" || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Fatalf("%q/%q: problem %+v", tc.query, tc.header, p)
		}
	}
}

func TestReplayTruncated(t *testing.T) {
	e := newEnv(t)
	e.seed(2, sse.ReplayLimit+5)
	s := heraldtest.MustOpenStream(t, e.URL+"/events?lastEventId=0", e.token("user2"))
	for i := 1; i <= sse.ReplayLimit; i++ {
		if m := s.MustNext(t, wait); m.ID != strconv.Itoa(i) {
			t.Fatalf("replayed event %d has id %q", i, m.ID)
		}
	}
	m := s.MustNext(t, wait)
	latest := strconv.Itoa(sse.ReplayLimit + 5)
	if m.Event != "replay_truncated" || m.ID != latest {
		t.Fatalf("after %d replayed events got %q id %q, want replay_truncated with id %s", sse.ReplayLimit, m.Event, m.ID, latest)
	}
	var info struct{ Next, Latest string }
	json.Unmarshal([]byte(m.Data), &info)
	if info.Next != strconv.Itoa(sse.ReplayLimit+1) || info.Latest != latest {
		t.Fatalf("replay_truncated data %s", m.Data)
	}
	e.mustPublish("live", 2)
	if m := s.MustNext(t, wait); m.ID != strconv.Itoa(sse.ReplayLimit+6) || heraldtest.Title(t, m) != "live" {
		t.Fatalf("live event after truncation: id %q %s", m.ID, m.Data)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.heartbeat = 50 * time.Millisecond })
	s := e.stream("user2")
	beats := 0
	for beats < 3 {
		m, err := s.NextBlock(wait)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dispatched() {
			t.Fatalf("unexpected event %+v", m)
		}
		for _, c := range m.Comments {
			if c == "heartbeat" {
				beats++
			}
		}
	}
}

func TestTokenExpiryEndsStream(t *testing.T) {
	e := newEnv(t)
	tok := e.tokenTTL("user2", shortTTL)
	s := heraldtest.MustOpenStream(t, e.URL+"/events", tok)
	start := time.Now()
	m := s.MustNext(t, shortTTL+10*time.Second)
	if m.Event != "token_expired" {
		t.Fatalf("got %q, want token_expired", m.Event)
	}
	if !strings.Contains(m.Data, `"code":"token_expired"`) {
		t.Fatalf("token_expired data %s", m.Data)
	}
	if took := time.Since(start); took > shortTTL+6*time.Second {
		t.Fatalf("token_expired came after %v", took)
	}
	s.WaitClosed(t, wait)
	// Reconnecting with the same, now expired, token is refused.
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", tok)
	if resp.StatusCode != 401 || problem(t, body).Code != "token_expired" {
		t.Fatalf("reconnect with the expired token: %d %s", resp.StatusCode, body)
	}
}

func TestTooManyStreams(t *testing.T) {
	e := newEnv(t)
	var tabs []*heraldtest.Stream
	for i := 0; i < 10; i++ {
		tabs = append(tabs, e.stream("user2"))
	}
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.token("user2"))
	if resp.StatusCode != 429 || problem(t, body).Code != "too_many_connections" {
		t.Fatalf("11th stream: %d %s, want 429 too_many_connections", resp.StatusCode, body)
	}
	e.stream("user3") // other employees are not affected
	tabs[0].Close()
	deadline := time.Now().Add(wait)
	for {
		s, resp, _ := heraldtest.OpenStream(t, e.URL+"/events", e.token("user2"))
		if s != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed tab did not free its place: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowClientClosed: a client that stops reading is cut off when its
// queue fills, while another client keeps receiving everything.
func TestSlowClientClosed(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.hubOpts = []sse.Option{sse.WithQueueSize(16)} })
	// The stalled client: a raw connection nobody reads from, with a tiny
	// receive buffer so the server's writes block soon.
	addr, _ := net.ResolveTCPAddr("tcp", strings.TrimPrefix(e.URL, "http://"))
	stalled, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.SetReadBuffer(1024)
	fmt.Fprintf(stalled, "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", e.token("user2"))
	reader := e.stream("user3")
	waitFor(t, "both streams registered", func() bool { n, _ := e.Hub.Stats(); return n == 2 })

	// Enough bytes to fill the socket buffers on both sides of loopback.
	big := strings.Repeat("x", 9000)
	data := map[string]string{"pad": strings.Repeat("y", 15000)}
	const n = 400
	for i := 0; i < n; i++ {
		status, out := e.publish(map[string]any{"to": map[string]any{"employees": []int{2, 3}}, "type": "t", "title": strconv.Itoa(i), "body": big, "data": data})
		if status != 201 {
			t.Fatalf("publish %d: %d %s", i, status, out)
		}
		if i%8 == 7 { // the reading client keeps up
			for j := i - 7; j <= i; j++ {
				if m := reader.MustNext(t, wait); heraldtest.Title(t, m) != strconv.Itoa(j) {
					t.Fatalf("reader got %q, want %d", heraldtest.Title(t, m), j)
				}
			}
		}
	}
	waitFor(t, "the stalled stream to be dropped", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEphemeral(t *testing.T) {
	e := newEnv(t)
	admin := e.stream("user1") // has role admin in the directory
	s2 := e.stream("user2")
	s3 := e.stream("user3", "Authorization", "Bearer "+e.token("user3", "ops")) // role from the token only
	status, out := e.publish(map[string]any{
		"to": map[string]any{"employees": []int{2}, "roles": []string{"admin", "ops"}}, "persist": false,
		"event": "typing", "type": "chat.typing", "title": "Ana is typing", "data": map[string]any{"chat": 7},
	})
	if status != 202 {
		t.Fatalf("ephemeral publish: %d %s", status, out)
	}
	ans := heraldtest.DecodeJSON[publishAnswer](t, out)
	if ans.ID != "" || ans.Recipients != 2 {
		t.Fatalf("ephemeral answer %s: want no id and 2 recipients (employee 2 and the directory's admin)", out)
	}
	for name, s := range map[string]*heraldtest.Stream{"admin": admin, "user2": s2, "ops by token": s3} {
		m := s.MustNext(t, wait)
		if m.Event != "typing" || m.HasID || !strings.Contains(m.Data, `"data":{"chat":7}`) || strings.Contains(m.Data, `"id"`) {
			t.Fatalf("%s got %+v, want a typing event without id", name, m)
		}
		s.ExpectQuiet(t, 50*time.Millisecond)
	}
	status, _, body := e.do("GET", "/notifications", e.token("user2"), nil)
	if status != 200 || !strings.Contains(string(body), `"notifications":[]`) {
		t.Fatalf("an ephemeral message was stored: %s", body)
	}
	// Default event name.
	e.publish(map[string]any{"to": map[string]any{"all": true}, "persist": false, "type": "t", "title": "hi"})
	if m := s2.MustNext(t, wait); m.Event != "notification" || m.HasID {
		t.Fatalf("ephemeral without event: %+v", m)
	}
}

func TestServiceOpensNoStream(t *testing.T) {
	e := newEnv(t)
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.service())
	if resp.StatusCode != 403 || problem(t, body).Code != "forbidden" {
		t.Fatalf("service stream: %d %s, want 403 forbidden", resp.StatusCode, body)
	}
}

func TestDeletedEmployeeStreamEnds(t *testing.T) {
	e := newEnv(t)
	s := e.stream("user4")
	if status, _, body := e.do("DELETE", "/employees/4", e.directory(), nil); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	s.WaitClosed(t, wait)
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.token("user4"))
	if resp.StatusCode != 403 || problem(t, body).Code != "unknown_employee" {
		t.Fatalf("deleted employee reconnects: %d %s", resp.StatusCode, body)
	}
}

func TestShutdownClosesStreams(t *testing.T) {
	e := newEnv(t)
	s := e.stream("user2")
	e.Hub.Close()
	s.WaitClosed(t, wait)
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.token("user2"))
	if resp.StatusCode != 503 || problem(t, body).Code != "unavailable" {
		t.Fatalf("stream during shutdown: %d %s", resp.StatusCode, body)
	}
}

// TestEventRightAfterConnect publishes the moment the stream's headers
// arrive, many times: the window between the subscription and the stream
// being ready to write must lose nothing.
func TestEventRightAfterConnect(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 40; i++ {
		s := e.stream("user2")
		e.mustPublish("now", 2)
		if m := s.MustNext(t, wait); m.ID != strconv.Itoa(i) {
			t.Fatalf("round %d: got id %q", i, m.ID)
		}
		s.Close()
	}
}

// TestFirstBytesCarryPosition: the preamble's id line gives a client that
// drops before any event a position to resume from, so what is published
// while it reconnects is replayed rather than lost.
func TestFirstBytesCarryPosition(t *testing.T) {
	e := newEnv(t)
	e.seed(2, 3)
	s := e.stream("user2")
	first, err := s.NextBlock(wait)
	if err != nil || !first.HasID || first.ID != "3" || first.Dispatched() || first.Retry != 3000 {
		t.Fatalf("first block = %+v, %v; want retry 3000 and id 3, no event", first, err)
	}
	s.Close()
	e.mustPublish("while reconnecting", 2)
	s = e.stream("user2", "Last-Event-ID", first.ID)
	if m := s.MustNext(t, wait); m.ID != "4" || heraldtest.Title(t, m) != "while reconnecting" {
		t.Fatalf("after resuming from the preamble's id: %+v", m)
	}
	// A resuming stream announces its resume point, not the newest seq.
	r := e.stream("user2", "Last-Event-ID", "1")
	if b, _ := r.NextBlock(wait); b.ID != "1" {
		t.Fatalf("resuming stream's first block id %q, want 1", b.ID)
	}
}

// TestInstanceStreamLimit: beyond MAX_STREAMS an instance answers 503
// unavailable with Retry-After, every transport counted.
func TestInstanceStreamLimit(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.hubOpts = []sse.Option{sse.WithMaxInstanceStreams(2)} })
	e.stream("user2")
	mustDialWS(t, e, "user3", "")
	_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.token("user4"))
	if resp.StatusCode != 503 || problem(t, body).Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream beyond MAX_STREAMS: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if _, status, body := dialWS(t, e, "", "Authorization", "Bearer "+e.token("user4")); status != 503 {
		t.Fatalf("ws beyond MAX_STREAMS: %d %s, want 503", status, body)
	}
}

// TestMaxStreamAge: a stream past its maximum age says why and ends; the
// client resumes with nothing lost.
func TestMaxStreamAge(t *testing.T) {
	// 3 s: long enough that the publish reaches the stream first on a
	// loaded machine (300 ms was not).
	e := newEnv(t, func(o *envOptions) { o.hubOpts = []sse.Option{sse.WithMaxAge(3 * time.Second)} })
	s := e.stream("user2")
	e.mustPublish("before", 2)
	if m := s.MustNext(t, wait); heraldtest.Title(t, m) != "before" {
		t.Fatalf("got %+v", m)
	}
	m := s.MustNext(t, 2*wait)
	if m.Event != "closed" || m.Data != `{"reason":"max_age"}` || m.HasID {
		t.Fatalf("got %+v, want event: closed with reason max_age and no id", m)
	}
	s.WaitClosed(t, wait)
	e.mustPublish("while away", 2)
	r := e.stream("user2", "Last-Event-ID", "1")
	if m := r.MustNext(t, wait); m.ID != "2" || heraldtest.Title(t, m) != "while away" {
		t.Fatalf("after resuming: %+v", m)
	}
}

// TestStreamOriginChecked: a page on a foreign origin cannot open a stream
// with the employee's cookie (it would take one of the employee's places
// even though CORS keeps the page from reading it); allowed origins, this
// host and clients without Origin can.
func TestStreamOriginChecked(t *testing.T) {
	e := newEnv(t)
	for _, o := range []string{"https://evil.example", "null"} {
		_, resp, body := heraldtest.OpenStream(t, e.URL+"/events", e.token("user2"), "Origin", o)
		if resp.StatusCode != 403 || problem(t, body).Code != "forbidden" {
			t.Fatalf("Origin %s: %d %s, want 403 forbidden", o, resp.StatusCode, body)
		}
	}
	if n, _ := e.Hub.Stats(); n != 0 {
		t.Fatalf("%d streams opened for foreign origins", n)
	}
	e.stream("user2", "Origin", origin).Close()
	e.stream("user2").Close()
}
