package sse

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// Socket.IO (Engine.IO protocol 4, Socket.IO protocol 5) on the stream
// engine: one more framing over the same hub, rooms, caps, queues and
// timers. A Socket.IO stream is a stream whose events are written as
// Socket.IO EVENT packets; on the WebSocket transport each packet is one
// text frame, on the long-polling transport a packet of a poll's answer.
// Events are encoded once as WebSocket frames and shared by every
// connection; a polling session sends the frame's payload.
//
// Engine.IO packets are one ASCII digit (the type) and data:
//
//	0 open (the handshake, server → client)   1 close
//	2 ping (server → client; "2probe" in an upgrade)   3 pong
//	4 message (a Socket.IO packet follows)   5 upgrade   6 noop
//
// Socket.IO packets (inside an Engine.IO message) are again one digit:
// 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 and 6 their
// binary forms. So a notification is "42[\"nueva_notificacion\",{…}]".

const (
	// SIOMaxPayload bounds what a Socket.IO client may send in one packet
	// (a WebSocket message) or one poll (a POST body), as Socket.IO's
	// maxHttpBufferSize; it is announced in the handshake. The client has
	// nothing to say but its CONNECT (with a token) and pongs: anything
	// larger ends the connection (EndTooLarge) or is refused (413).
	SIOMaxPayload = 64 << 10
	// SIODefaultEvent is the Socket.IO event name of a stored notification
	// (the hub's "notification" events), the old systems' name.
	SIODefaultEvent = "nueva_notificacion"
	// sioConnectTimeout bounds the time between the Engine.IO handshake and
	// an accepted CONNECT; a session still without a stream then is closed.
	sioConnectTimeout = 45 * time.Second
	// sioUpgradeTimeout bounds each step of an upgrade to WebSocket.
	sioUpgradeTimeout = 10 * time.Second
	// sioMaxAttempts bounds refused CONNECTs on one Engine.IO session.
	sioMaxAttempts = 5
)

// The Engine.IO packets Herald sends as they are.
var (
	sioPingFrame   = appendWSFrame(nil, opText, []byte("2"))
	sioCloseFrame  = appendWSFrame(nil, opText, []byte("1"))
	sioNoopPacket  = []byte("6")
	sioPongProbe   = appendWSFrame(nil, opText, []byte("3probe"))
	sioRecordSep   = byte(0x1e) // separates packets in a poll's answer or body
	sioPacketClose = []byte("1")
)

// sioEventName is the Socket.IO event name of a hub event: a stored
// notification is nueva_notificacion; every other event (ephemeral
// messages with their own name, state, replay_truncated, closed,
// token_expired) keeps its name.
func sioEventName(name string) string {
	if name == "notification" || name == "" {
		return SIODefaultEvent
	}
	return name
}

// appendSIOEvent appends an EVENT packet: 42["name",data].
func appendSIOEvent(dst []byte, name string, data []byte) []byte {
	dst = append(dst, `42[`...)
	dst = appendJSONName(dst, name)
	dst = append(dst, ',')
	if len(data) == 0 {
		data = []byte("null")
	}
	dst = append(dst, data...)
	return append(dst, ']')
}

// appendJSONName appends an event name as a JSON string: as it is when it
// needs no escaping (every name Herald sends: nueva_notificacion, its
// control events and the ephemeral names, [A-Za-z0-9_.-]), else through
// encoding/json.
func appendJSONName(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			n, _ := json.Marshal(name)
			return append(dst, n...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"')
}

// SIOFrame returns the event as a Socket.IO EVENT packet in one WebSocket
// text frame. Shared; callers must not modify it. It is built in one
// allocation of its exact size: a frame header (2, 4 or 10 bytes, RFC
// 6455 5.2, unmasked), then the packet.
func (e *Event) SIOFrame() []byte {
	e.sioOnce.Do(func() {
		name := sioEventName(e.Name)
		n := len(`42[`) + len(name) + 2 + len(`,`) + max(len(e.Data), len("null")) + len(`]`)
		b := make([]byte, 0, 10+n+8) // room for escapes in an unusual name
		b = append(b, 0x80|byte(opText))
		switch {
		case n <= 125:
			b = append(b, 0)
		case n <= 0xffff:
			b = append(b, 126, 0, 0)
		default:
			b = append(b, 127, 0, 0, 0, 0, 0, 0, 0, 0)
		}
		h := len(b)
		b = appendSIOEvent(b, name, e.Data)
		n = len(b) - h // exact, after escaping
		switch h {
		case 2:
			if n > 125 { // an escaped name outgrew the short form
				b = appendWSFrame(nil, opText, b[h:])
				break
			}
			b[1] = byte(n)
		case 4:
			if n > 0xffff {
				b = appendWSFrame(nil, opText, b[h:])
				break
			}
			binary.BigEndian.PutUint16(b[2:4], uint16(n))
		default:
			binary.BigEndian.PutUint64(b[2:10], uint64(n))
		}
		e.sio = b
	})
	return e.sio
}

// sioFraming writes Socket.IO EVENT packets, as WebSocket text frames
// (a polling session takes their payload).
type sioFraming struct{}

func (sioFraming) transport() Transport   { return TransportSIO }
func (sioFraming) event(ev *Event) []byte { return ev.SIOFrame() }
func (sioFraming) heartbeat() []byte      { return sioPingFrame }

// ending tells the client why its stream ended, as Socket.IO events of
// the same names and data as on the SSE stream (token_expired, closed),
// then closes the transport (a WebSocket close frame; an Engine.IO close
// packet on polling), so that socket.io-client reconnects by itself. An
// employee removed from the directory also gets a Socket.IO DISCONNECT,
// which stops the client's reconnecting.
func (sioFraming) ending(end *End, expiredAt time.Time) []byte {
	if end.Code == 0 {
		return nil
	}
	var b []byte
	switch {
	case end == EndTokenExpired:
		b = append(b, tokenExpiredEvent(expiredAt).SIOFrame()...)
	case end.Announce:
		b = append(b, controlEvent("closed", map[string]string{"reason": end.Reason}).SIOFrame()...)
	}
	if end == EndRemoved {
		b = appendWSFrame(b, opText, []byte("41"))
	}
	return append(b, closeFrame(end.Code, end.Text)...)
}

// serverFrames splits bytes made of whole server frames (unmasked, as
// appendWSFrame makes them) into their opcodes and payloads.
func serverFrames(b []byte, each func(op ws.OpCode, payload []byte)) {
	for len(b) >= 2 {
		op := ws.OpCode(b[0] & 0x0f)
		n, h := int64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, h = int64(b[2])<<8|int64(b[3]), 4
		case 127:
			n, h = 0, 10
			for _, c := range b[2:10] {
				n = n<<8 | int64(c)
			}
		}
		each(op, b[h:int64(h)+n])
		b = b[int64(h)+n:]
	}
}

// sioPacketOf returns the Engine.IO packet a server frame carries on the
// polling transport: a text frame's payload; a close frame is the close
// packet.
func sioPacketOf(op ws.OpCode, payload []byte) []byte {
	if op == ws.OpClose {
		return sioPacketClose
	}
	return payload
}

// sioClientPacket acts on a packet a Socket.IO client sent, known by its
// first bytes (head: up to two): a pong or a noop is nothing (any packet
// already counts as a sign of life), a close or a Socket.IO DISCONNECT
// ends the stream, and everything else (events, acks, joins of other
// namespaces) is ignored and counted: a client cannot reach anyone
// through Herald.
func (s *stream) sioClientPacket(binary bool, head []byte) *End {
	ignored, end := sioClassify(binary, head)
	if ignored {
		s.hub.stats.ignored[TransportSIO].Add(1)
	}
	return end
}

// sioClassify says what a client packet is: ignored (to count), or the
// end of the stream.
func sioClassify(binary bool, head []byte) (ignored bool, end *End) {
	if binary || len(head) == 0 {
		return true, nil
	}
	switch head[0] {
	case '1': // close
		return false, EndClient
	case '2', '3', '5', '6': // ping (probe), pong, upgrade, noop
		return false, nil
	case '4':
		if len(head) > 1 && head[1] == '1' { // DISCONNECT
			return false, EndClient
		}
	}
	return true, nil
}

// sioID returns a new random session or socket id.
func sioID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sioOpenPacket is the Engine.IO handshake: the session id, the
// transports it may upgrade to, the ping interval and timeout (the
// heartbeat, and how long a client waits beyond it), the largest packet.
func (h *Hub) sioOpenPacket(sid string, upgrades []string) []byte {
	b, _ := json.Marshal(struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int64    `json:"pingInterval"`
		PingTimeout  int64    `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}{sid, upgrades, h.heartbeat.Milliseconds(), silence(h.heartbeat) / int64(time.Millisecond), SIOMaxPayload})
	return append([]byte("0"), b...)
}

// SIORefusal is a refused Socket.IO CONNECT: the client's connect_error
// has Message as its message and {"code": Code} as its data.
type SIORefusal struct {
	Message string
	Code    string
	// nsp is the namespace the CONNECT asked for, when not "/": the
	// CONNECT_ERROR goes to that namespace, as socket.io's does.
	nsp string
}

func (r *SIORefusal) Error() string { return "socket.io connect refused: " + r.Code + ": " + r.Message }

// packet returns the CONNECT_ERROR packet: 44{"message":…,"data":{"code":…}},
// or 44/nsp,{…} for a namespace other than "/" (socket.io's encoder writes
// a namespace but "/" before the data, followed by a comma).
func (r *SIORefusal) packet() []byte {
	b, _ := json.Marshal(struct {
		Message string            `json:"message"`
		Data    map[string]string `json:"data"`
	}{r.Message, map[string]string{"code": r.Code}})
	p := []byte("44")
	if r.nsp != "" {
		p = append(append(p, r.nsp...), ',')
	}
	return append(p, b...)
}

// hubRefusal is the refusal for a stream the hub cannot open.
func hubRefusal(err error) *SIORefusal {
	switch err {
	case ErrTooManyStreams:
		return &SIORefusal{Message: "Demasiadas conexiones abiertas: " + err.Error(), Code: "too_many_connections"}
	case ErrInstanceFull, ErrClosed:
		return &SIORefusal{Message: "Servicio no disponible: " + err.Error(), Code: "unavailable"}
	}
	return &SIORefusal{Message: "Servicio no disponible", Code: "unavailable"}
}

// sioConnectPayload reads a CONNECT packet ("40", "40{…}", "40/nsp,{…}"):
// its auth object, or a refusal for another namespace or a payload that
// is not an object. Herald has only the namespace "/": another one is
// refused as socket.io refuses a namespace it does not have, with the
// CONNECT_ERROR addressed to that namespace (44/nsp,{"message":"Invalid
// namespace",…}), so that socket.io-client's socket for it gets its
// connect_error.
func sioConnectPayload(p []byte) (auth json.RawMessage, refusal *SIORefusal) {
	p = p[2:]
	if len(p) > 0 && p[0] == '/' {
		nsp, rest, _ := bytes.Cut(p, []byte(","))
		if string(nsp) != "/" {
			return nil, &SIORefusal{Message: "Invalid namespace", Code: "invalid_namespace", nsp: string(nsp)}
		}
		p = rest
	}
	if len(bytes.TrimSpace(p)) == 0 {
		return nil, nil
	}
	if !json.Valid(p) || bytes.TrimSpace(p)[0] != '{' {
		return nil, &SIORefusal{Message: "invalid CONNECT payload: the auth must be a JSON object", Code: "invalid_request"}
	}
	return json.RawMessage(p), nil
}

// sioConnected is the CONNECT answer with the socket's id.
func sioConnected() []byte {
	return []byte(`40{"sid":` + strconv.Quote(sioID()) + `}`)
}
