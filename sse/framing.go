package sse

import (
	"encoding/json"
	"strconv"
	"time"
)

// framing turns a stream's events into a transport's bytes. The transports
// differ only here (and in how they read what the client sends, see
// ws.go): the stream state machine, the queue, the timers and the endings
// are shared.
type framing interface {
	// transport names the transport in metrics ("sse", "ws", …).
	transport() Transport
	// event returns ev's bytes; shared across streams, not to be modified.
	event(ev *Event) []byte
	// heartbeat returns the keep-alive (an SSE comment, a WebSocket ping).
	heartbeat() []byte
	// ending returns what tells the client why the stream ended (nil: nothing).
	ending(end *End, expiredAt time.Time) []byte
}

// Transport names a transport in metrics and logs.
type Transport uint8

// The transports.
const (
	TransportSSE Transport = iota
	TransportWS
	TransportSIO // Socket.IO, over long-polling or WebSocket
	numTransports
)

// Transports lists every transport, for metrics tables.
var Transports = []Transport{TransportSSE, TransportWS, TransportSIO}

func (t Transport) String() string {
	switch t {
	case TransportSSE:
		return "sse"
	case TransportWS:
		return "ws"
	case TransportSIO:
		return "socketio"
	}
	return "unknown"
}

// sseFraming writes text/event-stream, as HTTP/1.1 chunks on a taken-over
// connection (chunked) or as plain bytes through net/http (HTTP/2, 1.0).
type sseFraming struct{ chunked bool }

var (
	heartbeatSSE        = AppendComment(nil, "heartbeat")
	heartbeatSSEChunked = appendChunk(nil, heartbeatSSE)
	lastChunk           = []byte("0\r\n\r\n")
)

func (f sseFraming) transport() Transport { return TransportSSE }

func (f sseFraming) event(ev *Event) []byte {
	if f.chunked {
		return ev.Chunk()
	}
	return ev.SSE()
}

func (f sseFraming) heartbeat() []byte {
	if f.chunked {
		return heartbeatSSEChunked
	}
	return heartbeatSSE
}

// ending is token_expired for an expired token, `event: closed` with the
// reason when Herald ends the stream on purpose, then (chunked) the last
// chunk, so the client sees a complete response rather than a cut.
func (f sseFraming) ending(end *End, expiredAt time.Time) []byte {
	var ev []byte
	switch {
	case end == EndTokenExpired:
		ev = tokenExpiredEvent(expiredAt).SSE()
	case end.Announce:
		ev = controlEvent("closed", map[string]string{"reason": end.Reason}).SSE()
	case !f.chunked:
		return nil
	}
	if !f.chunked {
		return ev
	}
	var b []byte
	if ev != nil {
		b = appendChunk(b, ev)
	}
	return append(b, lastChunk...)
}

// tokenExpiredEvent tells the client to come back with a fresh token.
func tokenExpiredEvent(expiredAt time.Time) *Event {
	return controlEvent("token_expired", map[string]string{
		"code": "token_expired", "expired_at": expiredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	})
}

// controlEvent builds an event outside the inbox sequence (no id line).
func controlEvent(name string, data any) *Event {
	b, _ := json.Marshal(data)
	return NewEvent(0, name, b)
}

// appendChunk appends b as one HTTP/1.1 chunk.
func appendChunk(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// wsFraming writes WebSocket text frames of {"event","id","data"} JSON.
type wsFraming struct{}

var pingFrame = appendWSFrame(nil, opPing, nil)

func (wsFraming) transport() Transport   { return TransportWS }
func (wsFraming) event(ev *Event) []byte { return ev.WSFrame() }
func (wsFraming) heartbeat() []byte      { return pingFrame }

// ending is the close frame; an expired token is first told with a
// token_expired frame, as SSE tells it.
func (wsFraming) ending(end *End, expiredAt time.Time) []byte {
	if end.Code == 0 {
		return nil
	}
	var b []byte
	if end == EndTokenExpired {
		b = append(b, tokenExpiredEvent(expiredAt).WSFrame()...)
	}
	return append(b, closeFrame(end.Code, end.Text)...)
}
