package postgres

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/corp/herald/store"
)

// channel is the NOTIFY channel every instance listens on (lowercase: an
// unquoted LISTEN folds case, pg_notify does not).
const channel = "herald"

// maxPayload is the largest NOTIFY payload Herald sends, with room to spare
// below PostgreSQL's 8,000-byte limit.
const maxPayload = 7000

// Payload kinds: the first byte of a NOTIFY payload.
const (
	// kindNotification: "n<id>" or, for small fan-outs, "n<id> <employee>:<seq>,…".
	kindNotification = "n"
	// kindEphemeral: "e<JSON>", an ephemeral message small enough to travel inline.
	kindEphemeral = "e"
	// kindStoredEphemeral: "x<id>", an ephemeral message waiting in ephemeral_messages.
	kindStoredEphemeral = "x"
	// kindEmployeeChanged: "u<id>", an employee was created or replaced.
	kindEmployeeChanged = "u"
	// kindEmployeeDeleted: "d<id>", an employee was deleted.
	kindEmployeeDeleted = "d"
	// kindState: "s<JSON>", a change of an employee's inbox state (stateWire).
	kindState = "s"
)

// message is a parsed NOTIFY payload, or (resync) the listener's signal
// that its connection was re-established and notifications may be lost.
type message struct {
	kind   string
	id     int64
	resync bool
	// inline is set when the recipients travelled in the payload; then
	// recipients holds them (later only the locally connected ones).
	inline     bool
	recipients []store.Recipient
	ephemeral  store.Ephemeral   // kindEphemeral
	state      store.StateChange // kindState
}

// parseMessage reads a payload.
func parseMessage(p string) (message, error) {
	if p == "" {
		return message{}, fmt.Errorf("empty payload")
	}
	m := message{kind: p[:1]}
	rest := p[1:]
	switch m.kind {
	case kindEphemeral:
		var w ephemeralWire
		if err := json.Unmarshal([]byte(rest), &w); err != nil {
			return message{}, fmt.Errorf("ephemeral payload: %w", err)
		}
		m.ephemeral = w.ephemeral()
		return m, nil
	case kindState:
		var w stateWire
		if err := json.Unmarshal([]byte(rest), &w); err != nil {
			return message{}, fmt.Errorf("state payload: %w", err)
		}
		m.state = w.change()
		return m, nil
	case kindNotification:
		head, list, hasList := strings.Cut(rest, " ")
		rest = head
		if hasList {
			m.inline = true
			rs, err := parseRecipients(list)
			if err != nil {
				return message{}, err
			}
			m.recipients = rs
		}
	case kindStoredEphemeral, kindEmployeeChanged, kindEmployeeDeleted:
	default:
		return message{}, fmt.Errorf("unknown payload kind %q", m.kind)
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return message{}, fmt.Errorf("payload id %q: %w", rest, err)
	}
	m.id = id
	return m, nil
}

// parseRecipients reads "<employee>:<seq>,…".
func parseRecipients(list string) ([]store.Recipient, error) {
	parts := strings.Split(list, ",")
	out := make([]store.Recipient, 0, len(parts))
	for _, part := range parts {
		e, s, ok := strings.Cut(part, ":")
		emp, err1 := strconv.ParseInt(e, 10, 64)
		seq, err2 := strconv.ParseInt(s, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("recipient %q is not employee:seq", part)
		}
		out = append(out, store.Recipient{Employee: emp, Seq: seq})
	}
	return out, nil
}

// ephemeralWire is an ephemeral message as it travels between instances.
// Short names keep inline payloads small.
type ephemeralWire struct {
	Event     string          `json:"ev,omitempty"`
	Type      string          `json:"ty"`
	Title     string          `json:"ti"`
	Body      string          `json:"bo,omitempty"`
	Data      json.RawMessage `json:"da,omitempty"`
	CreatedAt time.Time       `json:"at"`
	Employees []int64         `json:"em,omitempty"`
	Roles     []string        `json:"ro,omitempty"`
	All       bool            `json:"all,omitempty"`
}

func wireOf(e store.Ephemeral) ephemeralWire {
	return ephemeralWire{
		Event: e.Event, Type: e.Type, Title: e.Title, Body: e.Body, Data: e.Data,
		CreatedAt: e.CreatedAt, Employees: e.Employees, Roles: e.Roles, All: e.All,
	}
}

func (w ephemeralWire) ephemeral() store.Ephemeral {
	return store.Ephemeral{
		Event: w.Event, Type: w.Type, Title: w.Title, Body: w.Body, Data: w.Data,
		CreatedAt: w.CreatedAt.UTC(), Employees: w.Employees, Roles: w.Roles, All: w.All,
	}
}

// stateWire is a state change as it travels between instances.
type stateWire struct {
	Employee int64   `json:"e"`
	Op       string  `json:"o"`
	Seqs     []int64 `json:"s,omitempty"`
	All      bool    `json:"a,omitempty"`
	Unread   int     `json:"u"`
	Unseen   int     `json:"n"`
}

func (w stateWire) change() store.StateChange {
	return store.StateChange{Employee: w.Employee, Op: store.StateOp(w.Op), Seqs: w.Seqs, All: w.All,
		Counts: store.Counts{Unread: w.Unread, Unseen: w.Unseen}}
}

// stateSeqsPerPayload bounds the seqs of one state payload: 300 of the
// largest (19 digits and a comma) stay below maxPayload.
const stateSeqsPerPayload = 300

// statePayloads encodes c as one or more payloads (its seqs split so each
// stays below maxPayload; every part carries the counts).
func statePayloads(c store.StateChange) []string {
	var out []string
	seqs := c.Seqs
	for {
		part := seqs[:min(len(seqs), stateSeqsPerPayload)]
		seqs = seqs[len(part):]
		b, _ := json.Marshal(stateWire{Employee: c.Employee, Op: string(c.Op), Seqs: part, All: c.All,
			Unread: c.Counts.Unread, Unseen: c.Counts.Unseen})
		out = append(out, kindState+string(b))
		if len(seqs) == 0 {
			return out
		}
	}
}
