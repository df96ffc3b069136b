package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/corp/herald/sse"
)

// event is one dispatched stream event as the bench reads it.
type event struct {
	name string
	seq  int64 // the SSE id / frame id; 0 when absent (ephemeral)
	// bench is the payload the publisher put in the notification's data;
	// ok is false for events that carry none (control events).
	bench benchData
	ok    bool
}

// benchData is what every bench notification carries in its data: the
// publish number, the send time and whom it was for.
type benchData struct {
	Run string  `json:"run"` // the run that published it
	N   *uint32 `json:"n"`
	T   int64   `json:"t"` // send time, Unix nanoseconds
	E   int64   `json:"e,omitempty"`
	R   string  `json:"r,omitempty"`
	All bool    `json:"all,omitempty"`
}

func (d benchData) target() target { return target{Employee: d.E, Role: d.R, All: d.All} }

// notificationJSON is the notification object of a stream event, reduced
// to the part the bench reads.
type notificationJSON struct {
	Data benchData `json:"data"`
}

// decodeNotification fills ev's bench payload from a notification object.
func decodeNotification(ev *event, data []byte) {
	var n notificationJSON
	if json.Unmarshal(data, &n) == nil && n.Data.N != nil {
		ev.bench, ev.ok = n.Data, true
	}
}

// foreign reports whether an event carries another run's payload (replayed
// from an earlier run's inbox on a reused database): it is counted apart,
// never checked against this run's publishes.
func (ev event) foreign(run string) bool { return ev.ok && ev.bench.Run != run }

// streamConn is one open stream, SSE or WebSocket.
type streamConn interface {
	// next blocks until the next dispatched event, or an error when the
	// stream ends: closed by either side, or the context given to open (or,
	// for WebSocket, to next) ended.
	next(ctx context.Context) (event, error)
	// close drops the connection at once (with a TCP reset, so the tool
	// leaves no TIME_WAIT sockets that would hold ephemeral ports).
	close()
}

// dialer opens streams from one loopback source address.
type dialer struct {
	net     *net.Dialer
	ws      *http.Client // WebSocket handshakes through net
	timeout time.Duration
}

func newDialer(src net.IP, timeout time.Duration) *dialer {
	d := &dialer{timeout: timeout, net: &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src}}}
	d.ws = &http.Client{Transport: &http.Transport{
		DialContext:         d.dialTCP,
		MaxIdleConnsPerHost: -1, // every handshake owns its connection
		DisableCompression:  true,
	}}
	return d
}

// dialTCP connects and sets linger 0: closing resets the connection instead
// of leaving the port in TIME_WAIT, so back-to-back runs of tens of
// thousands of streams do not run out of ephemeral ports.
func (d *dialer) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

// statusError is a refused stream: the server answered, but not 200/101.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// open connects one stream: GET /events (SSE) or GET /ws (WebSocket) with a
// bearer token, resuming after the id resume (Last-Event-ID, or
// ?lastEventId for WebSocket); a negative resume is a fresh connect.
func (d *dialer) open(ctx context.Context, transport string, base *url.URL, token string, resume int64) (streamConn, error) {
	switch transport {
	case "ws":
		return d.openWS(ctx, base, token, resume)
	case "socketio":
		return d.openSIO(ctx, base, token, resume)
	}
	return d.openSSE(ctx, base, token, resume)
}

// openSSE speaks HTTP/1.1 itself over a plain connection: one goroutine and
// two small buffers per stream, where net/http's client would add two
// goroutines and their buffers per connection, and the tool needs its
// memory to stay small next to the server's.
func (d *dialer) openSSE(ctx context.Context, base *url.URL, token string, resume int64) (streamConn, error) {
	c, err := d.dialTCP(ctx, "tcp", base.Host)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(d.timeout))
	req := "GET /events HTTP/1.1\r\nHost: " + base.Host + "\r\nAuthorization: Bearer " + token +
		"\r\nAccept: text/event-stream\r\n"
	if resume >= 0 {
		req += "Last-Event-ID: " + strconv.FormatInt(resume, 10) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, &statusError{status: resp.StatusCode, body: string(body)}
	}
	rd := sse.NewReader(resp.Body)
	// The preamble (retry and ": connected") is flushed with the headers:
	// reading it makes "connected" mean the stream is live, not just answered.
	if _, err := rd.Next(); err != nil {
		c.Close()
		return nil, fmt.Errorf("read preamble: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	// One watcher for the connection's life, not one per read: thousands of
	// streams registering on the same context per event would contend.
	sc := &sseConn{c: c, rd: rd, stopWatch: context.AfterFunc(ctx, func() { c.Close() })}
	if ctx.Err() != nil {
		sc.close()
		return nil, ctx.Err()
	}
	return sc, nil
}

type sseConn struct {
	c         net.Conn
	rd        *sse.Reader
	stopWatch func() bool // stops closing c when the open's context ends
}

// next reads the next event; the context given to open, not this one,
// ends the read (by closing the connection).
func (s *sseConn) next(context.Context) (event, error) {
	for {
		m, err := s.rd.Next()
		if err != nil {
			return event{}, err
		}
		ev := event{name: m.Event}
		if m.HasID {
			ev.seq, _ = strconv.ParseInt(m.ID, 10, 64)
		}
		if !m.Dispatched() {
			// EventSource takes the id of a block without data too (it
			// moves lastEventId without firing an event); comments alone
			// (heartbeats) are nothing.
			if m.HasID {
				return event{name: "id-only", seq: ev.seq}, nil
			}
			continue
		}
		if m.Event == "notification" {
			decodeNotification(&ev, []byte(m.Data))
		}
		return ev, nil
	}
}

func (s *sseConn) close() {
	s.stopWatch()
	s.c.Close()
}

func (d *dialer) openWS(ctx context.Context, base *url.URL, token string, resume int64) (streamConn, error) {
	u := "ws://" + base.Host + "/ws"
	if resume >= 0 {
		u += "?lastEventId=" + strconv.FormatInt(resume, 10)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: d.ws,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &statusError{status: resp.StatusCode, body: err.Error()}
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	return &wsConn{c: c}, nil
}

type wsConn struct{ c *websocket.Conn }

// wsFrame is a server → client frame: {"event":…,"id":…,"data":{…}}.
type wsFrame struct {
	Event string           `json:"event"`
	ID    string           `json:"id"`
	Data  notificationJSON `json:"data"`
}

func (w *wsConn) next(ctx context.Context) (event, error) {
	for {
		typ, b, err := w.c.Read(ctx)
		if err != nil {
			return event{}, err
		}
		if typ != websocket.MessageText {
			continue
		}
		var f wsFrame
		if err := json.Unmarshal(b, &f); err != nil {
			return event{}, fmt.Errorf("decode frame: %w", err)
		}
		ev := event{name: f.Event}
		if f.ID != "" {
			ev.seq, _ = strconv.ParseInt(f.ID, 10, 64)
		}
		if f.Event == "notification" && f.Data.Data.N != nil {
			ev.bench, ev.ok = f.Data.Data, true
		}
		return ev, nil
	}
}

func (w *wsConn) close() { _ = w.c.CloseNow() }

// openSIO connects the way socket.io-client v4 does with
// transports: ["websocket"]: GET /socket.io/?EIO=4&transport=websocket,
// the open packet, then a CONNECT with auth {token, lastEventId}; a
// connect_error is a refused stream (counted as "http 401" etc. by its code).
func (d *dialer) openSIO(ctx context.Context, base *url.URL, token string, resume int64) (streamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+base.Host+"/socket.io/?EIO=4&transport=websocket", &websocket.DialOptions{HTTPClient: d.ws})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &statusError{status: resp.StatusCode, body: err.Error()}
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	fail := func(err error) (streamConn, error) { _ = c.CloseNow(); return nil, err }
	if _, b, err := c.Read(ctx); err != nil || len(b) == 0 || b[0] != '0' {
		return fail(fmt.Errorf("socket.io open packet %q: %v", b, err))
	}
	auth := map[string]string{"token": token}
	if resume >= 0 {
		auth["lastEventId"] = strconv.FormatInt(resume, 10)
	}
	a, _ := json.Marshal(auth)
	if err := c.Write(ctx, websocket.MessageText, append([]byte("40"), a...)); err != nil {
		return fail(err)
	}
	for {
		_, b, err := c.Read(ctx)
		switch {
		case err != nil:
			return fail(err)
		case len(b) >= 2 && b[0] == '4' && b[1] == '0':
			return &sioConn{c: c}, nil
		case len(b) >= 2 && b[0] == '4' && b[1] == '4':
			var ce struct{ Data struct{ Code string } }
			_ = json.Unmarshal(b[2:], &ce)
			status := http.StatusUnauthorized
			switch ce.Data.Code {
			case "too_many_connections":
				status = http.StatusTooManyRequests
			case "unavailable":
				status = http.StatusServiceUnavailable
			case "unknown_employee", "forbidden":
				status = http.StatusForbidden
			}
			return fail(&statusError{status: status, body: string(b[2:])})
		case len(b) == 1 && b[0] == '2':
			_ = c.Write(ctx, websocket.MessageText, []byte("3"))
		}
	}
}

// sioConn is a Socket.IO stream on the WebSocket transport.
type sioConn struct{ c *websocket.Conn }

func (s *sioConn) next(ctx context.Context) (event, error) {
	for {
		typ, b, err := s.c.Read(ctx)
		if err != nil {
			return event{}, err
		}
		if typ != websocket.MessageText || len(b) == 0 {
			continue
		}
		switch {
		case b[0] == '2': // ping
			_ = s.c.Write(ctx, websocket.MessageText, []byte("3"))
			continue
		case b[0] == '1' || (len(b) >= 2 && b[0] == '4' && b[1] == '1'):
			return event{}, io.EOF
		case len(b) < 2 || b[0] != '4' || b[1] != '2':
			continue
		}
		ev, err := decodeSIOEvent(b[2:])
		if err != nil {
			return event{}, fmt.Errorf("decode socket.io event %q: %v", b, err)
		}
		if ev.name == "replay_truncated" {
			continue // its position comes with the next notifications
		}
		return ev, nil
	}
}

func (s *sioConn) close() { _ = s.c.CloseNow() }

// sioPayload is what the tool reads of an event's argument.
type sioPayload struct {
	ID   string    `json:"id"`
	Data benchData `json:"data"`
}

// decodeSIOEvent reads an EVENT packet's arguments, ["name",{…}], in one
// pass (json decodes into the pointers the slice holds): the name
// (nueva_notificacion is the stream's "notification"), the id and, for a
// notification, the bench's payload.
func decodeSIOEvent(b []byte) (event, error) {
	var name string
	var p sioPayload
	args := []any{&name, &p}
	var te *json.UnmarshalTypeError
	if err := json.Unmarshal(b, &args); err != nil && !errors.As(err, &te) { // an argument that is not an object is no notification
		return event{}, err
	}
	if name == "" {
		return event{}, errors.New("no event name")
	}
	ev := event{name: name}
	if name == "nueva_notificacion" {
		ev.name = "notification"
	}
	if p.ID != "" {
		ev.seq, _ = strconv.ParseInt(p.ID, 10, 64)
	}
	if ev.name == "notification" && p.Data.N != nil {
		ev.bench, ev.ok = p.Data, true
	}
	return ev, nil
}

// reason condenses a connect error into a short label for counting.
func reason(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return "http " + strconv.Itoa(se.status)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var inner *os.SyscallError
		if errors.As(op.Err, &inner) {
			return op.Op + ": " + inner.Err.Error()
		}
		return op.Op + ": " + op.Err.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "eof"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
