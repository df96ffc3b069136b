package handlers_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/corp/herald/auth"
)

// The Socket.IO endpoint, driven by the real socket.io-client v4
// (testdata/socketio/driver.js).

var sioTransports = []struct {
	name string
	opts []string
	want string // the transport a delivery arrives on
}{
	{"websocket only", []string{"websocket"}, "websocket"},
	{"polling only", []string{"polling"}, "polling"},
	{"polling, then the upgrade", []string{"polling", "websocket"}, "websocket"},
}

func TestSocketIODelivery(t *testing.T) {
	for _, tr := range sioTransports {
		t.Run(tr.name, func(t *testing.T) {
			e := newEnv(t)
			d := newSIODriver(t, e.URL)
			d.open("a", map[string]any{"auth": map[string]any{"token": e.token("user2")}, "transports": tr.opts}, false)
			d.expect("a", "connect")
			if tr.want == "websocket" && len(tr.opts) > 1 {
				d.expectUpgrade("a")
			}
			waitFor(t, "the socket.io stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
			e.mustPublish("Hello", 2)
			n, ev := d.expectNotification("a")
			if n.ID != "1" || n.Title != "Hello" || n.Type != "test.note" || n.CreatedAt == "" {
				t.Fatalf("nueva_notificacion = %s, want id 1, Hello", ev.Args[0])
			}
			if ev.Transport != tr.want {
				t.Fatalf("delivered over %s, want %s", ev.Transport, tr.want)
			}
			// The same JSON as the SSE stream's data.
			s := e.stream("user2", "Last-Event-ID", "0")
			if m := s.MustNext(t, wait); m.Data != string(ev.Args[0]) {
				t.Fatalf("socket.io data %s, SSE data %s: want the same", ev.Args[0], m.Data)
			}
			// Ephemeral: the event by its name.
			e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "persist": false, "event": "typing", "type": "t", "title": "x"})
			if ev := d.expect("a", "event"); ev.Event != "typing" || !strings.Contains(string(ev.Args[0]), `"title":"x"`) {
				t.Fatalf("ephemeral = %+v, want a typing event", ev)
			}
			e.publish(map[string]any{"to": map[string]any{"employees": []int{2}}, "persist": false, "type": "t", "title": "y"})
			if ev := d.expect("a", "event"); ev.Event != "nueva_notificacion" || !strings.Contains(string(ev.Args[0]), `"title":"y"`) {
				t.Fatalf("ephemeral without event = %+v, want nueva_notificacion", ev)
			}
		})
	}
}

func TestSocketIOCookieHandshake(t *testing.T) {
	e := newEnv(t)
	d := newSIODriver(t, e.URL)
	d.open("a", map[string]any{"extraHeaders": map[string]string{"Cookie": "token=" + e.token("user3")}}, false)
	d.expect("a", "connect")
	waitFor(t, "the socket.io stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
	e.mustPublish("for 3", 3)
	if n, _ := d.expectNotification("a"); n.Title != "for 3" {
		t.Fatalf("got %+v", n)
	}
}

func TestSocketIOAzureHandshake(t *testing.T) {
	e := newAzureEnv(t)
	d := newSIODriver(t, e.URL)
	d.open("a", map[string]any{"auth": map[string]any{"token": e.user("user2@corp.example")}, "transports": []string{"websocket"}}, false)
	d.expect("a", "connect")
	waitFor(t, "the socket.io stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
	e.mustPublish("azure", 2)
	if n, _ := d.expectNotification("a"); n.Title != "azure" {
		t.Fatalf("got %+v", n)
	}
	// An invalid Azure token: the Azure system's message.
	d.open("b", map[string]any{"auth": map[string]any{"token": e.user("user2@corp.example") + "x"}, "transports": []string{"websocket"}}, false)
	if ev := d.expect("b", "connect_error"); ev.Message != "Autenticación fallida: Token de Azure inválido." || code(t, ev) != "invalid_token" {
		t.Fatalf("got %+v", ev)
	}
	d.open("c", map[string]any{"auth": map[string]any{"token": e.user("nobody@corp.example")}, "transports": []string{"websocket"}}, false)
	if ev := d.expect("c", "connect_error"); ev.Message != "Usuario no encontrado en el sistema local." || code(t, ev) != "unknown_employee" {
		t.Fatalf("got %+v", ev)
	}
}

func code(t *testing.T, ev sioEvent) string {
	t.Helper()
	var data struct{ Code string }
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatalf("connect_error data %s: %v", ev.Data, err)
	}
	return data.Code
}

func TestSocketIOFailures(t *testing.T) {
	e := newEnv(t)
	d := newSIODriver(t, e.URL)
	cookie := func(v string) map[string]any {
		// What a browser sends with withCredentials: true (in Node,
		// socket.io-client's withCredentials keeps its own cookie jar).
		return map[string]any{"extraHeaders": map[string]string{"Cookie": v}}
	}
	expired, err := auth.MintHS256(e.Secret, auth.TokenSpec{User: "user2", TTL: time.Hour}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts map[string]any
		msg  string
		code string
	}{
		{"no token", map[string]any{"auth": map[string]any{}}, "Autenticación requerida: No se proporcionó token.", "missing_token"},
		{"invalid token", map[string]any{"auth": map[string]any{"token": "x"}}, "Autenticación fallida: Token de Azure inválido.", "invalid_token"},
		{"expired token", map[string]any{"auth": map[string]any{"token": expired}}, "Autenticación fallida: Token de Azure inválido.", "token_expired"},
		{"unknown employee", map[string]any{"auth": map[string]any{"token": e.token("nobody")}}, "Usuario no encontrado en el sistema local.", "unknown_employee"},
		{"service token", map[string]any{"auth": map[string]any{"token": e.service()}}, "Usuario no encontrado en el sistema local.", "forbidden"},
		{"bad Authorization header", map[string]any{"extraHeaders": map[string]string{"Authorization": "Bearer x"}}, "Autenticación fallida: Token de Azure inválido.", "invalid_token"},
		{"no cookie", map[string]any{}, "No autenticado", "missing_token"},
		{"cookie without token", cookie("other=1"), "Token no proporcionado", "missing_token"},
		{"invalid cookie token", cookie("token=x"), "Token inválido", "invalid_token"},
		{"unknown employee by cookie", cookie("token=" + e.token("nobody")), "Usuario no encontrado en el sistema local.", "unknown_employee"},
		{"bad lastEventId", map[string]any{"auth": map[string]any{"token": e.token("user2"), "lastEventId": "x"}}, "auth.lastEventId must be an event id: a non-negative integer", "invalid_request"},
	}
	for i, tt := range tests {
		for _, tr := range []string{"websocket", "polling"} {
			client := strconv.Itoa(i) + tr
			opts := map[string]any{"transports": []string{tr}}
			for k, v := range tt.opts {
				opts[k] = v
			}
			d.open(client, opts, false)
			if ev := d.expect(client, "connect_error"); ev.Message != tt.msg || code(t, ev) != tt.code {
				t.Errorf("%s over %s: connect_error %q %s, want %q {code: %s}", tt.name, tr, ev.Message, ev.Data, tt.msg, tt.code)
			}
			d.send(map[string]any{"op": "close", "client": client})
		}
	}
	// A refused client may retry on the same connection with a fresh token.
	d.open("retry", map[string]any{"auth": map[string]any{"token": "stale"}, "transports": []string{"websocket"}}, false)
	d.expect("retry", "connect_error")
	d.send(map[string]any{"op": "connect", "client": "retry", "auth": map[string]any{"token": e.token("user2")}})
	d.expect("retry", "connect")
	if n, _ := e.Hub.Stats(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}
}

// Herald has only the namespace "/": a client of another one is refused as
// socket.io refuses a namespace it does not have, and hears it on its
// socket for that namespace.
func TestSocketIOOtherNamespace(t *testing.T) {
	e := newEnv(t)
	d := newSIODriver(t, e.URL)
	for _, tr := range []string{"websocket", "polling"} {
		d.openNamespace(tr, "/other", map[string]any{"auth": map[string]any{"token": e.token("user2")}, "transports": []string{tr}})
		if ev := d.expect(tr, "connect_error"); ev.Message != "Invalid namespace" || code(t, ev) != "invalid_namespace" {
			t.Errorf("over %s: connect_error %q %s, want Invalid namespace {code: invalid_namespace}", tr, ev.Message, ev.Data)
		}
		d.send(map[string]any{"op": "close", "client": tr})
	}
	if n, _ := e.Hub.Stats(); n != 0 {
		t.Fatalf("%d streams open, want none", n)
	}
}

// The bytes of the refusal: socket.io's CONNECT_ERROR names the namespace
// before its data (44/nsp,{…}), on either transport, and the Engine.IO
// connection stays open for a CONNECT to "/".
func TestSocketIOOtherNamespacePacket(t *testing.T) {
	e := newEnv(t)
	const want = `44/other,{"message":"Invalid namespace","data":{"code":"invalid_namespace"}}`

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func() string {
		t.Helper()
		typ, b, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText {
			t.Fatalf("read: %v %v %q", typ, err, b)
		}
		return string(b)
	}
	if p := read(); !strings.HasPrefix(p, `0{"sid":`) {
		t.Fatalf("open packet %q", p)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`40/other,{"token":"`+e.token("user2")+`"}`)); err != nil {
		t.Fatal(err)
	}
	if p := read(); p != want {
		t.Fatalf("websocket: %q, want %q", p, want)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+e.token("user2")+`"}`)); err != nil {
		t.Fatal(err)
	}
	if p := read(); !strings.HasPrefix(p, `40{"sid":`) {
		t.Fatalf("CONNECT to / after the refusal: %q", p)
	}

	status, _, body := e.do("GET", "/socket.io/?EIO=4&transport=polling", "", nil)
	if status != 200 {
		t.Fatalf("handshake: %d %s", status, body)
	}
	var open struct{ SID string }
	decodeInto(t, body[1:], &open)
	q := "/socket.io/?EIO=4&transport=polling&sid=" + open.SID
	if status, _, body := e.do("POST", q, "", "40/other", "Content-Type", "text/plain;charset=UTF-8"); status != 200 {
		t.Fatalf("post: %d %s", status, body)
	}
	if status, _, body := e.do("GET", q, "", nil); status != 200 || string(body) != `44/other,{"message":"Invalid namespace","data":{"code":"invalid_namespace"}}` {
		t.Fatalf("poll: %d %q, want %q", status, body, want)
	}
}

func TestSocketIOIsolationAndIgnoredEmits(t *testing.T) {
	e := newEnv(t)
	d := newSIODriver(t, e.URL)
	d.open("two", map[string]any{"auth": map[string]any{"token": e.token("user2")}}, false)
	d.open("three", map[string]any{"auth": map[string]any{"token": e.token("user3")}, "transports": []string{"polling"}}, false)
	d.expect("two", "connect")
	d.expect("three", "connect")
	// What the old clients could do: join another's room, emit to it.
	for _, c := range []string{"two", "three"} {
		d.send(map[string]any{"op": "join", "client": c, "room": "room_3"})
		d.send(map[string]any{"op": "emit", "client": c, "event": "nueva_notificacion", "args": []any{map[string]any{"id_usuario": 3, "title": "forged"}}})
	}
	waitFor(t, "the ignored emits counted", func() bool {
		return metricValue(t, e, `herald_stream_client_messages_ignored_total{transport="socketio"}`) >= 6
	})
	e.mustPublish("for 2", 2)
	e.mustPublish("for 3", 3)
	if n, _ := d.expectNotification("two"); n.Title != "for 2" {
		t.Fatalf("user2 got %+v first, want its own", n)
	}
	if n, _ := d.expectNotification("three"); n.Title != "for 3" {
		t.Fatalf("user3 got %+v first, want its own (nothing forged)", n)
	}
	if n, _ := e.Hub.Stats(); n != 2 {
		t.Fatalf("%d streams, want 2: emits do not end a stream", n)
	}
}

// metricValue reads one sample of /metrics.
func metricValue(t *testing.T, e *env, series string) float64 {
	t.Helper()
	_, _, body := e.do("GET", "/metrics", "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func TestSocketIOReconnectCatchUp(t *testing.T) {
	for _, tr := range sioTransports {
		t.Run(tr.name, func(t *testing.T) {
			e := newEnv(t)
			d := newSIODriver(t, e.URL)
			d.open("a", map[string]any{"auth": map[string]any{"token": e.token("user2")}, "transports": tr.opts}, true)
			d.expect("a", "connect")
			waitFor(t, "the socket.io stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
			e.mustPublish("one", 2)
			if n, _ := d.expectNotification("a"); n.ID != "1" {
				t.Fatalf("got %+v", n)
			}
			d.send(map[string]any{"op": "close", "client": "a"})
			d.expect("a", "disconnect")
			waitFor(t, "the stream closed", func() bool { n, _ := e.Hub.Stats(); return n == 0 })
			e.mustPublish("two", 2)
			e.mustPublish("three", 2)
			d.send(map[string]any{"op": "connect", "client": "a"}) // auth carries lastEventId 1
			d.expect("a", "connect")
			for _, want := range []string{"2", "3"} {
				if n, _ := d.expectNotification("a"); n.ID != want {
					t.Fatalf("caught up %s, want %s", n.ID, want)
				}
			}
			e.mustPublish("four", 2)
			if n, _ := d.expectNotification("a"); n.ID != "4" {
				t.Fatalf("live %s after the catch-up, want 4 (no gap, no duplicate)", n.ID)
			}
			// A dropped transport: socket.io-client reconnects by itself.
			d.send(map[string]any{"op": "drop", "client": "a"})
			d.expect("a", "disconnect")
			d.expect("a", "connect")
			e.mustPublish("five", 2)
			if n, _ := d.expectNotification("a"); n.ID != "5" {
				t.Fatalf("after the reconnect %s, want 5", n.ID)
			}
		})
	}
}

func TestSocketIOSharesTheCap(t *testing.T) {
	e := newEnv(t)
	d := newSIODriver(t, e.URL)
	for range 4 {
		s := e.stream("user2")
		t.Cleanup(s.Close)
	}
	for range 3 {
		mustDialWS(t, e, "user2", "")
	}
	for i := range 3 {
		c := "s" + strconv.Itoa(i)
		d.open(c, map[string]any{"auth": map[string]any{"token": e.token("user2")}, "transports": []string{[]string{"websocket", "polling"}[i%2]}}, false)
		d.expect(c, "connect")
	}
	waitFor(t, "ten streams", func() bool { n, _ := e.Hub.Stats(); return n == 10 })
	d.open("eleventh", map[string]any{"auth": map[string]any{"token": e.token("user2")}}, false)
	if ev := d.expect("eleventh", "connect_error"); code(t, ev) != "too_many_connections" {
		t.Fatalf("11th socket.io: %+v, want too_many_connections", ev)
	}
	if status, _, body := e.do("GET", "/events", e.token("user2"), nil); status != 429 || problem(t, body).Code != "too_many_connections" {
		t.Fatalf("11th SSE: %d %s, want 429", status, body)
	}
	// Another employee is not held back.
	d.open("other", map[string]any{"auth": map[string]any{"token": e.token("user3")}}, false)
	d.expect("other", "connect")
}

func TestSocketIOLimitsAndBadRequests(t *testing.T) {
	e := newEnv(t)
	status, _, body := e.do("GET", "/socket.io/?EIO=4&transport=polling", "", nil)
	if status != 200 || !strings.HasPrefix(string(body), `0{"sid":"`) {
		t.Fatalf("handshake: %d %s", status, body)
	}
	var open struct {
		SID        string   `json:"sid"`
		Upgrades   []string `json:"upgrades"`
		MaxPayload int      `json:"maxPayload"`
	}
	decodeInto(t, body[1:], &open)
	if len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" || open.MaxPayload != 64<<10 {
		t.Fatalf("open packet %s", body)
	}
	tests := []struct {
		name, method, query string
		body                any
		status              int
	}{
		{"Engine.IO 3", "GET", "?EIO=3&transport=polling", nil, 400},
		{"no version", "GET", "?transport=polling", nil, 400},
		{"unknown transport", "GET", "?EIO=4&transport=flash", nil, 400},
		{"unknown session", "GET", "?EIO=4&transport=polling&sid=nope", nil, 400},
		{"POST handshake", "POST", "?EIO=4&transport=polling", "40", 400},
		{"websocket without upgrade", "GET", "?EIO=4&transport=websocket", nil, 400},
		{"body over maxPayload", "POST", "?EIO=4&transport=polling&sid=" + open.SID, strings.Repeat("x", 64<<10+1), 413},
	}
	for _, tt := range tests {
		status, _, body := e.do(tt.method, "/socket.io/"+tt.query, "", tt.body, "Content-Type", "text/plain;charset=UTF-8")
		if status != tt.status || problem(t, body).Code != "invalid_request" {
			t.Errorf("%s: %d %s, want %d invalid_request", tt.name, status, body, tt.status)
		}
	}
	if status, _, body := e.do("GET", "/socket.io/?EIO=4&transport=polling", "", nil, "Origin", "https://evil.example"); status != 403 {
		t.Errorf("foreign origin: %d %s, want 403", status, body)
	}

	// A WebSocket message over maxPayload ends the connection; the client
	// reconnects.
	d := newSIODriver(t, e.URL)
	d.open("a", map[string]any{"auth": map[string]any{"token": e.token("user2")}, "transports": []string{"websocket"}}, false)
	d.expect("a", "connect")
	d.send(map[string]any{"op": "emit", "client": "a", "event": "big", "args": []any{strings.Repeat("x", 70_000)}})
	d.expect("a", "disconnect")
	d.expect("a", "connect")
	if v := metricValue(t, e, `herald_streams_closed_total{reason="message_too_large",transport="socketio"}`); v != 1 {
		t.Fatalf("message_too_large ends: %v, want 1", v)
	}
}

// Herald ends a stream on purpose: the client hears why, by the event name
// of the SSE stream, then reconnects by itself, except an employee removed
// from the directory, who is disconnected for good.
func TestSocketIOEndings(t *testing.T) {
	for _, tr := range []string{"websocket", "polling"} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			d := newSIODriver(t, e.URL)
			// A token that expires soon (shortTTL: long enough for a
			// loaded machine to start the client and connect):
			// token_expired, then the reconnect is refused with the
			// token's code.
			d.open("exp", map[string]any{"auth": map[string]any{"token": e.tokenTTL("user3", shortTTL)}, "transports": []string{tr}}, false)
			d.expect("exp", "connect")
			if ev := d.expect("exp", "event"); ev.Event != "token_expired" || !strings.Contains(string(ev.Args[0]), `"code":"token_expired"`) {
				t.Fatalf("got %+v, want token_expired", ev)
			}
			d.expect("exp", "disconnect")
			if ev := d.expect("exp", "connect_error"); ev.Message != "Autenticación fallida: Token de Azure inválido." || code(t, ev) != "token_expired" {
				t.Fatalf("reconnect with the expired token: %+v", ev)
			}
			d.send(map[string]any{"op": "close", "client": "exp"})

			d.open("del", map[string]any{"auth": map[string]any{"token": e.token("user4")}, "transports": []string{tr}}, false)
			d.expect("del", "connect")
			waitFor(t, "the stream", func() bool { n, _ := e.Hub.Stats(); return n == 1 })
			if status, _, body := e.do("DELETE", "/employees/4", e.directory(), nil); status != 204 {
				t.Fatalf("delete: %d %s", status, body)
			}
			if ev := d.expect("del", "event"); ev.Event != "closed" || string(ev.Args[0]) != `{"reason":"employee_deleted"}` {
				t.Fatalf("got %+v, want closed employee_deleted", ev)
			}
			if ev := d.expect("del", "disconnect"); ev.Reason != "io server disconnect" {
				t.Fatalf("disconnect %q, want io server disconnect (no reconnecting)", ev.Reason)
			}
		})
	}
}
