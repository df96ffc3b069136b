package main

import (
	"encoding/json"
	"testing"
)

// What the publisher sends must come back out of a stream event: the
// server wraps data in the notification object, and the stream decodes it.
func TestPublishBodyRoundTrip(t *testing.T) {
	tests := []struct {
		to        target
		ephemeral bool
	}{
		{target{Employee: 1000042}, false},
		{target{Role: "bench-r3"}, true},
		{target{All: true}, false},
	}
	for _, tt := range tests {
		body := publishBody("run1", 17, 1795305800877365487, tt.to, tt.ephemeral)
		var req struct {
			To struct {
				Employees []int64  `json:"employees"`
				Roles     []string `json:"roles"`
				All       bool     `json:"all"`
			} `json:"to"`
			Type    string          `json:"type"`
			Title   string          `json:"title"`
			Data    json.RawMessage `json:"data"`
			Persist *bool           `json:"persist"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if (req.Persist != nil) != tt.ephemeral || req.Type != "bench.load" || req.Title != "bench 17" {
			t.Fatalf("body %s: wrong persist, type or title", body)
		}
		// As the server sends it on the stream.
		wire := `{"id":"3","type":"bench.load","title":"bench 17","body":"","data":` + string(req.Data) + `,"created_at":"2026-11-22T00:00:00.000Z"}`
		var ev event
		decodeNotification(&ev, []byte(wire))
		if !ev.ok || ev.foreign("run1") || !ev.foreign("run2") || *ev.bench.N != 17 || ev.bench.T != 1795305800877365487 || ev.bench.target() != tt.to {
			t.Fatalf("decoded %+v (n=%v) from %s, want n=17 for %+v", ev.bench, ev.bench.N, wire, tt.to)
		}
	}
}

func TestDecodeIgnoresForeignNotifications(t *testing.T) {
	var ev event
	decodeNotification(&ev, []byte(`{"id":"1","type":"x","title":"y","data":{"request_id":4}}`))
	if ev.ok {
		t.Fatal("a notification without the bench's payload must not count")
	}
}

// The Socket.IO client reads an event in one pass: its name, id and the
// bench's payload; other arguments are no notification.
func TestDecodeSIOEvent(t *testing.T) {
	tests := []struct {
		packet string
		name   string
		seq    int64
		n      uint32
		ok     bool
	}{
		{`["nueva_notificacion",{"id":"7","title":"x","data":{"run":"r","n":3,"t":5}}]`, "notification", 7, 3, true},
		{`["nueva_notificacion",{"title":"x","data":{"run":"r","n":4,"t":5}}]`, "notification", 0, 4, true},
		{`["typing",{"data":{"run":"r","n":4,"t":5}}]`, "typing", 0, 0, false},
		{`["closed",{"reason":"shutdown"}]`, "closed", 0, 0, false},
		{`["x","a string"]`, "x", 0, 0, false},
		{`["x"]`, "x", 0, 0, false},
	}
	for _, tt := range tests {
		ev, err := decodeSIOEvent([]byte(tt.packet))
		if err != nil {
			t.Errorf("%s: %v", tt.packet, err)
			continue
		}
		if ev.name != tt.name || ev.seq != tt.seq || ev.ok != tt.ok || (tt.ok && *ev.bench.N != tt.n) {
			t.Errorf("%s: %+v, want %s seq %d n %d ok %v", tt.packet, ev, tt.name, tt.seq, tt.n, tt.ok)
		}
	}
	for _, bad := range []string{`[`, `{}`, `[]`} {
		if _, err := decodeSIOEvent([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
