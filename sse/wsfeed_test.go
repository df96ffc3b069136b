package sse

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame is a masked client frame, as a browser sends it.
func clientFrame(t *testing.T, f ws.Frame) []byte {
	t.Helper()
	b, err := ws.CompileFrame(ws.MaskFrame(f))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWSControlFrameLimit: a ping may carry up to 125 bytes (RFC 6455,
// 5.5) and is answered with a pong carrying them back; one byte more
// breaks the protocol. Fragmented control frames do too.
func TestWSControlFrameLimit(t *testing.T) {
	h := testHub(t)
	s, _ := open(t, h, Params{Employee: 1})
	s.ws = &wsState{}
	payload := bytes.Repeat([]byte("p"), 125)
	replies, end := s.ws.feed(s, clientFrame(t, ws.NewPingFrame(payload)))
	want := appendWSFrame(nil, opPong, payload)
	if end != nil || !bytes.Equal(replies, want) {
		t.Fatalf("125-byte ping: end %v, replies %d bytes; want a pong with the payload", end, len(replies))
	}
	if _, end := s.ws.feed(s, clientFrame(t, ws.NewPingFrame(append(payload, 'x')))); end != EndProtocol {
		t.Fatalf("126-byte ping: end %v, want protocol_error", end)
	}
	s2, _ := open(t, h, Params{Employee: 2})
	s2.ws = &wsState{}
	frag := ws.NewPingFrame([]byte("a"))
	frag.Header.Fin = false
	if _, end := s2.ws.feed(s2, clientFrame(t, frag)); end != EndProtocol {
		t.Fatalf("fragmented ping: end %v, want protocol_error", end)
	}
}
