package sse

import (
	"encoding/json"
	"strconv"
	"sync"
)

// Event is one message for streams. It is immutable once made: the hub hands
// the same *Event to every stream it reaches, and each wire form is encoded
// once, on first use, and then shared.
type Event struct {
	// Seq is the recipient's inbox seq, the SSE id; 0 for messages outside the
	// inbox sequence (ephemeral messages, control events).
	Seq int64
	// Name is the SSE event name.
	Name string
	// Data is one JSON value, compact (no line breaks).
	Data []byte

	sseOnce   sync.Once
	sse       []byte
	chunkOnce sync.Once
	chunk     []byte
	wsOnce    sync.Once
	ws        []byte
	frameOnce sync.Once
	frame     []byte
	sioOnce   sync.Once
	sio       []byte
}

// NewEvent returns an event; data must be a compact JSON value.
func NewEvent(seq int64, name string, data []byte) *Event {
	return &Event{Seq: seq, Name: name, Data: data}
}

// ID returns the SSE id ("" when the event has no seq).
func (e *Event) ID() string {
	if e.Seq <= 0 {
		return ""
	}
	return strconv.FormatInt(e.Seq, 10)
}

// SSE returns the event's text/event-stream bytes. Callers must not modify them.
func (e *Event) SSE() []byte {
	e.sseOnce.Do(func() {
		e.sse = AppendEvent(make([]byte, 0, len(e.Data)+len(e.Name)+32), e.ID(), e.Name, e.Data)
	})
	return e.sse
}

// Chunk returns the event's SSE bytes as one HTTP/1.1 chunk (size line,
// bytes, CRLF), the form written to a taken-over connection. Shared; callers
// must not modify it.
func (e *Event) Chunk() []byte {
	e.chunkOnce.Do(func() { e.chunk = appendChunk(nil, e.SSE()) })
	return e.chunk
}

// WSFrame returns the event as one whole WebSocket text frame (header and
// JSON payload): server frames are unmasked, so every connection can be
// sent the same bytes. Shared; callers must not modify it.
func (e *Event) WSFrame() []byte {
	e.frameOnce.Do(func() { e.frame = appendWSFrame(nil, opText, e.JSON()) })
	return e.frame
}

// wsFrame is the JSON of an event's WebSocket frame.
type wsFrame struct {
	Event string          `json:"event"`
	ID    string          `json:"id,omitempty"`
	Data  json.RawMessage `json:"data"`
}

// JSON returns the event as one JSON object,
// {"event":"notification","id":"<seq>","data":{…}}, the WebSocket frame.
// Callers must not modify the bytes.
func (e *Event) JSON() []byte {
	e.wsOnce.Do(func() {
		data := json.RawMessage(e.Data)
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		e.ws, _ = json.Marshal(wsFrame{Event: e.Name, ID: e.ID(), Data: data})
	})
	return e.ws
}
