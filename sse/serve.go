package sse

import (
	"bytes"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
)

// RetryMillis is the reconnection delay a stream asks EventSource to use.
const RetryMillis = 3000

// StatusRecorder is implemented by a ResponseWriter wrapper that records
// the status for an access log: a taken-over stream writes its response
// head itself, so it reports the status this way.
type StatusRecorder interface{ RecordStatus(code int) }

func recordStatus(w http.ResponseWriter, code int) {
	if r, ok := w.(StatusRecorder); ok {
		r.RecordStatus(code)
	}
}

// mode is how a stream's connection is served.
type mode uint8

const (
	modePoller   mode = iota // taken over onto the poller: no goroutine while idle
	modeParked               // taken over, one goroutine of its own (TLS)
	modeResponse             // written through net/http (HTTP/2, HTTP/1.0)
)

// sseMode: HTTP/1.1 streams are taken over (onto the poller unless the
// connection is TLS or the hub keeps streams on goroutines); others (HTTP/2
// cannot be taken over, HTTP/1.0 has no chunked encoding) stay in net/http.
func (h *Hub) sseMode(r *http.Request) mode {
	switch {
	case h.goroutines || r.ProtoMajor != 1 || r.ProtoMinor != 1:
		return modeResponse
	case h.poller == nil || r.TLS != nil:
		return modeParked
	}
	return modePoller
}

// ServeSSE serves GET /events for an authenticated employee: the
// text/event-stream headers, the preamble, the replay, then live events,
// heartbeats and the stream's end. It returns an error only when the
// stream cannot open (ErrTooManyStreams, ErrInstanceFull, ErrClosed), before
// anything was written; the caller answers it. On HTTP/1.1 it returns as
// soon as the stream is handed to the engine; otherwise it returns when the
// stream ends.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, p Params) error {
	m := h.sseMode(r)
	s, err := h.open(r.Context(), p, sseFraming{chunked: m != modeResponse})
	if err != nil {
		return err
	}
	if m == modeResponse {
		h.running.Add(1)
		defer h.running.Add(-1)
		c := newHTTPConn(w)
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if end := c.write([][]byte{appendPreamble(nil, s.startID())}); end != nil {
			s.stop(end)
		}
		if s.start(c) {
			c.serve(s, r.Context().Done())
		}
		return nil
	}
	nc, err := hijackSSE(w, s.startID())
	if err != nil {
		s.abandon()
		h.log.Warn("cannot take the stream's connection over", "err", err)
		return nil
	}
	h.serveTakenOver(s, nc, nil, m)
	return nil
}

// ServeWS serves GET /ws for an authenticated employee whose Origin the
// caller has checked: the upgrade, the replay (resume with ?lastEventId=),
// then live events as text frames, pings, and a close frame that says why
// the stream ended. Errors as for ServeSSE. A request the upgrader refuses
// (not a WebSocket handshake) is answered by it.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, p Params) error {
	s, err := h.open(r.Context(), p, wsFraming{})
	if err != nil {
		return err
	}
	s.ws = &wsState{}
	recordStatus(w, http.StatusSwitchingProtocols)
	// The upgrader writes its own response head on the taken-over
	// connection; these are for whoever records the response (access log,
	// the API document's tests).
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Connection", "Upgrade")
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		s.abandon()
		return nil
	}
	var buffered []byte
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ = rw.Reader.Peek(n)
		buffered = bytes.Clone(buffered)
	}
	m := modePoller
	if h.goroutines || h.poller == nil || r.TLS != nil {
		m = modeParked
	}
	h.serveTakenOver(s, nc, buffered, m)
	return nil
}

// serveTakenOver serves a stream whose connection was taken from net/http,
// on the poller or on a goroutine of its own.
func (h *Hub) serveTakenOver(s *stream, nc net.Conn, buffered []byte, m mode) {
	if m == modePoller {
		c, err := h.poller.takeOver(nc, s, buffered)
		if err != nil {
			s.abandon()
			h.log.Warn("cannot poll the stream's connection", "err", err)
			return
		}
		s.start(c)
		return
	}
	c := &netConn{nc: nc, s: s}
	if s.start(c) {
		h.goWork(func() { c.serve(buffered) })
	}
}

// hijackSSE takes the connection over from net/http and writes the
// response head (with the headers set so far, CORS ones included) and the
// preamble.
func hijackSSE(w http.ResponseWriter, startID string) (net.Conn, error) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	hd.Set("Transfer-Encoding", "chunked")
	hd.Set("Connection", "close") // the connection is the stream's alone
	hd.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	recordStatus(w, http.StatusOK)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hd.Write(&head)
	head.WriteString("\r\n")
	head.Write(appendChunk(nil, appendPreamble(nil, startID)))
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// appendPreamble appends a stream's first bytes: the retry delay, a
// comment, and the starting position as an id line, in one block that
// fires no event: "retry: 3000\n: connected\nid: 42\n\n".
func appendPreamble(dst []byte, startID string) []byte {
	dst = AppendRetry(dst, RetryMillis)
	dst = append(dst, ": connected\n"...)
	if startID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, startID...)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}
