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
