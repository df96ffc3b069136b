package sse

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzWSFeed feeds client bytes to the WebSocket parser whole and split at
// an arbitrary point: it never panics, keeps at most one frame's header and
// control payload waiting, answers the same (replies and ending) however
// the bytes arrive, and every reply is a well-formed server frame.
func FuzzWSFeed(f *testing.F) {
	ping := append([]byte{0x89, 0x82, 1, 2, 3, 4}, 'h'^1, 'i'^2)
	closeF := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}
	text := append([]byte{0x81, 0x85, 0, 0, 0, 0}, "hello"...)
	f.Add(ping, 3)
	f.Add(append(text, ping...), 7)
	f.Add(append(append(ping, text...), closeF...), 1)
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, 2) // unmasked
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4}, 4)  // 256-byte payload announced
	h := NewHub(WithGoroutines(true))
	defer h.Close()
	s := &stream{hub: h, f: wsFraming{}}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		whole := &wsState{}
		r1, e1 := whole.feed(s, bytes.Clone(b))
		split := &wsState{}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(b) + 1
		r2, e2 := split.feed(s, bytes.Clone(b[:cut]))
		if e2 == nil {
			more, end := split.feed(s, bytes.Clone(b[cut:]))
			r2, e2 = append(r2, more...), end
		}
		if e1 != e2 || !bytes.Equal(r1, r2) {
			t.Fatalf("whole: %q %v; split at %d: %q %v", r1, e1, cut, r2, e2)
		}
		if len(whole.partial) > 14+maxControl {
			t.Fatalf("%d bytes kept waiting", len(whole.partial))
		}
		for rd := bytes.NewReader(r1); rd.Len() > 0; {
			fr, err := ws.ReadFrame(rd)
			if err != nil || fr.Header.Masked || !fr.Header.OpCode.IsControl() {
				t.Fatalf("reply %q: %+v %v", r1, fr.Header, err)
			}
		}
	})
}

// FuzzSIOFeed is FuzzWSFeed for Socket.IO streams, whose data frames are
// read as Engine.IO packets: the same answer however the bytes arrive, at
// most a header and two payload bytes (or a control frame) kept waiting,
// and the same counts of ignored packets.
func FuzzSIOFeed(f *testing.F) {
	masked := func(op byte, p string) []byte {
		return append([]byte{0x80 | op, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
	}
	f.Add(masked(1, "3"), 3)
	f.Add(append(masked(1, `42["join","room_3"]`), masked(1, "41")...), 7)
	f.Add(append(masked(2, "binary"), masked(9, "hi")...), 8)
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 5) // 64 KiB announced: too large
	h := NewHub(WithGoroutines(true))
	defer h.Close()
	s := &stream{hub: h, f: sioFraming{}}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		before := h.stats.ignored[TransportSIO].Load()
		whole := &wsState{sio: true}
		r1, e1 := whole.feed(s, bytes.Clone(b))
		n1 := h.stats.ignored[TransportSIO].Load() - before
		split := &wsState{sio: true}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(b) + 1
		r2, e2 := split.feed(s, bytes.Clone(b[:cut]))
		if e2 == nil {
			more, end := split.feed(s, bytes.Clone(b[cut:]))
			r2, e2 = append(r2, more...), end
		}
		n2 := h.stats.ignored[TransportSIO].Load() - before - n1
		if e1 != e2 || !bytes.Equal(r1, r2) || n1 != n2 {
			t.Fatalf("whole: %q %v %d ignored; split at %d: %q %v %d", r1, e1, n1, cut, r2, e2, n2)
		}
		if len(whole.partial) > 14+maxControl {
			t.Fatalf("%d bytes kept waiting", len(whole.partial))
		}
	})
}
