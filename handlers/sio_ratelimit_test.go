package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/corp/herald/handlers"
)

// TestSocketIOConnectRate: CONNECT_RATE counts Socket.IO handshakes (a
// request without a session id) and not the polls and posts of a session
// already open, which would otherwise be refused once the handshakes have
// used the burst.
func TestSocketIOConnectRate(t *testing.T) {
	e := newEnv(t, withLimits(handlers.Limits{Connect: 1})) // a burst of 2, a frozen clock
	const handshake = "/socket.io/?EIO=4&transport=polling"
	var sid string
	for i := range 2 {
		status, _, body := e.do(http.MethodGet, handshake, "", nil)
		if status != http.StatusOK {
			t.Fatalf("handshake %d within the burst: %d %s", i+1, status, body)
		}
		var open struct{ SID string }
		decodeInto(t, body[1:], &open)
		sid = open.SID
	}
	status, h, out := e.do(http.MethodGet, handshake, "", nil)
	rateLimited(t, "a third handshake from one address", status, h, out)
	q := handshake + "&sid=" + sid
	// The session's CONNECT, then the poll that reads its answer.
	if status, _, body := e.do(http.MethodPost, q, "", "40", "Content-Type", "text/plain;charset=UTF-8"); status != http.StatusOK {
		t.Fatalf("post of an open session: %d %s, want 200 (not limited)", status, body)
	}
	if status, _, body := e.do(http.MethodGet, q, "", nil); status != http.StatusOK || !strings.HasPrefix(string(body), "4") {
		t.Fatalf("poll of an open session: %d %s, want 200 and the CONNECT's answer (not limited)", status, body)
	}
}
