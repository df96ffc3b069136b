package sse

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestSIOEventPackets(t *testing.T) {
	tests := []struct {
		name string
		ev   *Event
		want string
	}{
		{"stored notification", NewEvent(7, "notification", []byte(`{"id":"7"}`)), `42["nueva_notificacion",{"id":"7"}]`},
		{"ephemeral with a name", NewEvent(0, "typing", []byte(`{"a":1}`)), `42["typing",{"a":1}]`},
		{"state", NewEvent(0, "state", []byte(`{"op":"read"}`)), `42["state",{"op":"read"}]`},
		{"a name that needs escaping", NewEvent(0, `a"b`, nil), `42["a\"b",null]`},
	}
	for _, tt := range tests {
		var got []string
		serverFrames(tt.ev.SIOFrame(), func(op ws.OpCode, p []byte) { got = append(got, string(p)) })
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// SIOFrame builds the frame in place: the same bytes as framing the packet,
// for every header length and for names that need escaping.
func TestSIOFrameSizes(t *testing.T) {
	for _, name := range []string{"notification", "typing", `a"b`, "<x>", strings.Repeat(`"`, 70)} {
		for _, size := range []int{0, 1, 90, 100, 125, 126, 200, 0xffff - 30, 0xffff, 0x10000, 1 << 17} {
			var data []byte
			if size > 0 {
				data = []byte(`"` + strings.Repeat("x", size) + `"`)
			}
			want := appendWSFrame(nil, opText, appendSIOEvent(nil, sioEventName(name), data))
			if got := NewEvent(0, name, data).SIOFrame(); !bytes.Equal(got, want) {
				t.Errorf("%q with %d bytes of data: frame differs (len %d, want %d)", name, size, len(got), len(want))
			}
		}
	}
}

func TestSIOEndings(t *testing.T) {
	tests := []struct {
		end  *End
		want []string // packets; "close" for the close frame
	}{
		{EndClient, nil},
		{EndMaxAge, []string{`42["closed",{"reason":"max_age"}]`, "close"}},
		{EndRemoved, []string{`42["closed",{"reason":"employee_deleted"}]`, "41", "close"}},
		{EndTooLarge, []string{"close"}},
	}
	for _, tt := range tests {
		var got []string
		serverFrames(sioFraming{}.ending(tt.end, time.Now()), func(op ws.OpCode, p []byte) {
			if op == ws.OpClose {
				got = append(got, "close")
				return
			}
			got = append(got, string(p))
		})
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %q, want %q", tt.end.Reason, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: %q, want %q", tt.end.Reason, got, tt.want)
			}
		}
	}
	var got []string
	serverFrames(sioFraming{}.ending(EndTokenExpired, time.Unix(0, 0)), func(op ws.OpCode, p []byte) { got = append(got, string(p)) })
	if len(got) != 2 || got[0] != `42["token_expired",{"code":"token_expired","expired_at":"1970-01-01T00:00:00.000Z"}]` {
		t.Fatalf("token expiry: %q", got)
	}
}

func TestSIOClientPackets(t *testing.T) {
	tests := []struct {
		packet  string
		binary  bool
		ignored bool
		end     *End
	}{
		{"3", false, false, nil},
		{"6", false, false, nil},
		{"2probe", false, false, nil},
		{"1", false, false, EndClient},
		{"41", false, false, EndClient},
		{`42["join","room_3"]`, false, true, nil},
		{`40/admin,`, false, true, nil},
		{"43", false, true, nil},
		{"x", false, true, nil},
		{"", false, true, nil},
		{"45", true, true, nil},
	}
	for _, tt := range tests {
		p := []byte(tt.packet)
		ignored, end := sioClassify(tt.binary, p[:min(len(p), 2)])
		if ignored != tt.ignored || end != tt.end {
			t.Errorf("%q: ignored %v, end %v; want %v, %v", tt.packet, ignored, end, tt.ignored, tt.end)
		}
	}
}

func TestSIORefusalPacket(t *testing.T) {
	tests := []struct{ packet, want string }{
		{`40/other,{"token":"t"}`, `44/other,{"message":"Invalid namespace","data":{"code":"invalid_namespace"}}`},
		{`40/admin`, `44/admin,{"message":"Invalid namespace","data":{"code":"invalid_namespace"}}`},
		{`40[1]`, `44{"message":"invalid CONNECT payload: the auth must be a JSON object","data":{"code":"invalid_request"}}`},
	}
	for _, tt := range tests {
		_, r := sioConnectPayload([]byte(tt.packet))
		if r == nil || string(r.packet()) != tt.want {
			t.Errorf("%s: refusal %v, want %s", tt.packet, r, tt.want)
			continue
		}
	}
	if got := string((&SIORefusal{Message: "No autenticado", Code: "missing_token"}).packet()); got != `44{"message":"No autenticado","data":{"code":"missing_token"}}` {
		t.Errorf("refusal of /: %s", got)
	}
}

func TestSIOConnectPayload(t *testing.T) {
	tests := []struct {
		packet, auth, refusal string
	}{
		{"40", "", ""},
		{`40{"token":"t"}`, `{"token":"t"}`, ""},
		{`40/,{"token":"t"}`, `{"token":"t"}`, ""},
		{`40/admin,{}`, "", "invalid_namespace"},
		{`40[1]`, "", "invalid_request"},
		{`40{"token":`, "", "invalid_request"},
	}
	for _, tt := range tests {
		auth, r := sioConnectPayload([]byte(tt.packet))
		code := ""
		if r != nil {
			code = r.Code
		}
		if string(auth) != tt.auth || code != tt.refusal {
			t.Errorf("%s: auth %s, refusal %q; want %s, %q", tt.packet, auth, code, tt.auth, tt.refusal)
		}
	}
}

// BenchmarkSIOFrame is a Socket.IO event's encoding, done once per event
// and shared by every Socket.IO stream that gets it: a stored
// notification (nueva_notificacion) and an ephemeral message with a name
// of its own.
func BenchmarkSIOFrame(b *testing.B) {
	data := []byte(`{"id":"1234","type":"request.approved","title":"Your request was approved","body":"Vacation 2026-12-01 … 2026-12-05","data":{"request_id":481},"created_at":"2026-12-05T10:00:00.000Z"}`)
	for _, name := range []string{"notification", "typing"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewEvent(0, name, data).SIOFrame()
			}
		})
	}
}
