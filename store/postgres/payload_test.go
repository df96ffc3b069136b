package postgres

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    message
		wantErr bool
	}{
		{"large notification", "n17", message{kind: kindNotification, id: 17}, false},
		{"small notification", "n17 12:5,15:9", message{kind: kindNotification, id: 17, inline: true,
			recipients: []store.Recipient{{Employee: 12, Seq: 5}, {Employee: 15, Seq: 9}}}, false},
		{"stored ephemeral", "x3", message{kind: kindStoredEphemeral, id: 3}, false},
		{"employee changed", "u12", message{kind: kindEmployeeChanged, id: 12}, false},
		{"employee deleted", "d12", message{kind: kindEmployeeDeleted, id: 12}, false},
		{"empty", "", message{}, true},
		{"unknown kind", "z1", message{}, true},
		{"bad id", "nx", message{}, true},
		{"bad recipient", "n1 12", message{}, true},
		{"bad seq", "n1 12:x", message{}, true},
		{"bad ephemeral", "e{", message{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMessage(tt.payload)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMessage(%q) error = %v, want error %v", tt.payload, err, tt.wantErr)
			}
			if err == nil && (got.kind != tt.want.kind || got.id != tt.want.id || got.inline != tt.want.inline ||
				!slices.Equal(got.recipients, tt.want.recipients)) {
				t.Fatalf("parseMessage(%q) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestEphemeralRoundTrip(t *testing.T) {
	e := store.Ephemeral{Event: "typing", Type: "chat.typing", Title: "Ana is typing", Body: "…",
		Data: json.RawMessage(`{"room":7}`), CreatedAt: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC),
		Employees: []int64{1, 2}, Roles: []string{"admin"}}
	js, err := json.Marshal(wireOf(e))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(kindEphemeral + string(js))
	if err != nil {
		t.Fatal(err)
	}
	got := m.ephemeral
	if got.Event != e.Event || got.Title != e.Title || got.Body != e.Body || string(got.Data) != string(e.Data) ||
		!got.CreatedAt.Equal(e.CreatedAt) || !slices.Equal(got.Employees, e.Employees) || !slices.Equal(got.Roles, e.Roles) || got.All {
		t.Fatalf("round trip gave %+v, want %+v", got, e)
	}
	if len(js) > 200 || strings.Contains(string(js), `"all"`) {
		t.Fatalf("inline ephemeral payload is %d bytes (%s); want it compact", len(js), js)
	}
}

// TestStatePayloads: a state change travels in payloads of at most
// stateSeqsPerPayload seqs, each below maxPayload with the largest seqs and
// each carrying the counts; a change without seqs (all) is one payload.
func TestStatePayloads(t *testing.T) {
	const big = int64(1<<63 - 1)
	for _, n := range []int{0, 1, stateSeqsPerPayload, stateSeqsPerPayload + 1, 2*stateSeqsPerPayload + 1} {
		c := store.StateChange{Employee: 7, Op: store.OpRead, All: n == 0, Counts: store.Counts{Unread: 3, Unseen: 2}}
		for i := range n {
			c.Seqs = append(c.Seqs, big-int64(i))
		}
		ps := statePayloads(c)
		if want := max(1, (n+stateSeqsPerPayload-1)/stateSeqsPerPayload); len(ps) != want {
			t.Fatalf("%d seqs: %d payloads; want %d", n, len(ps), want)
		}
		var seqs []int64
		for _, p := range ps {
			if len(p) >= maxPayload {
				t.Fatalf("%d seqs: a payload of %d bytes; want below %d", n, len(p), maxPayload)
			}
			m, err := parseMessage(p)
			if err != nil {
				t.Fatal(err)
			}
			s := m.state
			if s.Employee != 7 || s.Op != store.OpRead || s.All != (n == 0) || s.Counts != c.Counts || len(s.Seqs) > stateSeqsPerPayload {
				t.Fatalf("%d seqs: payload parsed as %+v", n, s)
			}
			seqs = append(seqs, s.Seqs...)
		}
		if !slices.Equal(seqs, c.Seqs) {
			t.Fatalf("%d seqs: the payloads carry %d seqs; want all of them, in order", n, len(seqs))
		}
	}
}
