package sse

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// WebSocket frames, through github.com/gobwas/ws: server frames are built
// once per event (unmasked, so every connection gets the same bytes);
// client frames are parsed as they arrive, without a goroutine per
// connection: pings are answered, a close is echoed, data is ignored (the
// stream is push-only; a transport that listens, such as Socket.IO, sets
// onMessage).

const (
	opText = ws.OpText
	opPing = ws.OpPing
	opPong = ws.OpPong
)

// maxControl is the largest control frame payload (RFC 6455, 5.5).
const maxControl = 125

// appendWSFrame appends one whole, final, unmasked frame.
func appendWSFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))}
	var b bytes.Buffer
	b.Grow(ws.HeaderSize(h) + len(payload))
	_ = ws.WriteHeader(&b, h)
	dst = append(dst, b.Bytes()...)
	return append(dst, payload...)
}

// closeFrame is a close frame with code and reason.
func closeFrame(code uint16, reason string) []byte {
	return appendWSFrame(nil, ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
}

// wsState is what a WebSocket stream tracks of what its client sends.
type wsState struct {
	// pingedAt is when the oldest unanswered ping went out (Unix
	// nanoseconds), 0 when the client has sent something since: any frame
	// from the client answers.
	pingedAt atomic.Int64
	partial  []byte // an incomplete frame; nil almost always
	skip     int64  // payload bytes of an ignored frame still to come
	// sio: the client speaks Engine.IO (Socket.IO): data frames are
	// packets, read by their first bytes (sioClientPacket).
	sio bool
}

// silence is how long a client may leave a ping unanswered: a heartbeat,
// but never less than 5 s, so a busy client or network is not taken for a
// dead one.
func silence(heartbeat time.Duration) int64 { return int64(max(heartbeat, 5*time.Second)) }

// beat records a ping going out at now, and reports false when the ping
// before it is still unanswered after the allowed silence: the peer is
// dead.
func (w *wsState) beat(now int64, heartbeat time.Duration) bool {
	since := w.pingedAt.Load()
	if since == 0 {
		w.pingedAt.Store(now)
		return true
	}
	return now-since < silence(heartbeat)
}

// feed parses what the client sent. It returns the frames to send back
// (pongs, the close echo) and, when the client closed or broke the
// protocol, why the stream ends. Partial frames wait for more bytes; the
// payload of data frames is skipped without being kept. feed runs on one
// goroutine at a time (the poller's, or the connection's own).
func (w *wsState) feed(s *stream, b []byte) (replies []byte, end *End) {
	w.pingedAt.Store(0)
	if len(w.partial) > 0 {
		b = append(w.partial, b...)
		w.partial = nil
	}
	for len(b) > 0 {
		if w.skip > 0 {
			k := min(w.skip, int64(len(b)))
			w.skip -= k
			b = b[k:]
			continue
		}
		h, err := ws.ReadHeader(bytes.NewReader(b))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			w.partial = bytes.Clone(b) // at most a header's 14 bytes
			return replies, nil
		}
		if err != nil || !h.Masked || h.Rsv != 0 {
			return replies, EndProtocol // clients must mask; no extensions were agreed
		}
		hlen := int64(ws.HeaderSize(h))
		if !h.OpCode.IsControl() {
			if w.sio {
				// An Engine.IO packet: its type is in its first two bytes;
				// the rest is skipped unread, whatever it says.
				if h.Length > SIOMaxPayload {
					return replies, EndTooLarge
				}
				need := min(h.Length, 2)
				if int64(len(b)) < hlen+need {
					w.partial = bytes.Clone(b) // at most 14 + 2 bytes
					return replies, nil
				}
				if h.OpCode != ws.OpContinuation {
					var head [2]byte
					copy(head[:], b[hlen:hlen+need])
					ws.Cipher(head[:need], h.Mask, 0)
					if end := s.sioClientPacket(h.OpCode == ws.OpBinary, head[:need]); end != nil {
						return replies, end
					}
				}
			} else if h.Fin {
				// Data: ignored and counted (a push-only stream).
				s.hub.stats.ignored[s.f.transport()].Add(1)
			}
			w.skip = h.Length
			b = b[hlen:]
			continue
		}
		if h.Length > maxControl || !h.Fin {
			return replies, EndProtocol
		}
		if int64(len(b)) < hlen+h.Length {
			w.partial = bytes.Clone(b) // at most 14 + 125 bytes
			return replies, nil
		}
		payload := b[hlen : hlen+h.Length]
		ws.Cipher(payload, h.Mask, 0)
		b = b[hlen+h.Length:]
		switch h.OpCode {
		case ws.OpPing:
			replies = appendWSFrame(replies, opPong, payload)
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(payload)
			if code.Empty() {
				code = ws.StatusNormalClosure
			}
			return appendWSFrame(replies, ws.OpClose, ws.NewCloseFrameBody(code, "")), EndClient
		}
	}
	return replies, nil
}
