package sse

import "errors"

// End is why a stream ended: one value that the SSE ending (event: closed),
// the WebSocket close code, logs and metrics all read, so they cannot drift.
// The table below is every reason there is; Ends lists it for metrics.
type End struct {
	// Reason is the stable name: the "reason" of `event: closed`, the label
	// of herald_streams_closed_total, the log attribute.
	Reason string
	// Code and Text are the WebSocket close frame; Code 0 sends none (the
	// peer is gone, or cannot be told).
	Code uint16
	Text string
	// Announce: Herald ended the stream on purpose, and an SSE client is
	// told why with `event: closed` before the response ends.
	Announce bool

	idx int // 1 + the position in Ends
}

// Error makes an *End usable as an error where one is expected.
func (e *End) Error() string { return "stream ended: " + e.Reason }

// Why streams end. WebSocket codes: 1001 going away (reconnect), 1008
// policy, 1011 server error, 1012 service restart (reconnect, elsewhere),
// 1013 try again later, 4001 token expired (get a fresh token, then
// reconnect).
var (
	// EndClient: the client closed the connection.
	EndClient = &End{Reason: "client"}
	// EndClientData: an SSE client sent bytes after its request; it has
	// nothing to say on a stream, so the connection is not what we think.
	EndClientData = &End{Reason: "client_data"}
	// EndProtocol: a WebSocket client broke the protocol (bad frame, a
	// frame over the limit).
	EndProtocol = &End{Reason: "protocol_error", Code: 1002, Text: "protocol error"}
	// EndTooLarge: a Socket.IO client sent a message over the size limit
	// (SIOMaxPayload), as Socket.IO's maxHttpBufferSize.
	EndTooLarge = &End{Reason: "message_too_large", Code: 1009, Text: "message too big"}
	// EndTokenExpired: the token's exp passed. SSE sends its own
	// token_expired event instead of closed.
	EndTokenExpired = &End{Reason: "token_expired", Code: 4001, Text: "token expired"}
	// EndSlowConsumer: the stream's queue filled; the client reconnects and
	// replays what it missed.
	EndSlowConsumer = &End{Reason: "slow_consumer", Code: 1013, Text: "too slow; reconnect and resume", Announce: true}
	// EndWriteTimeout: a write could not complete in time (a stalled client).
	EndWriteTimeout = &End{Reason: "write_timeout", Code: 1013, Text: "write timed out; reconnect and resume"}
	// EndDeadPeer: the client stopped answering (no pong, or the kernel gave
	// up on unacknowledged data).
	EndDeadPeer = &End{Reason: "dead_peer"}
	// EndRemoved: the employee was deleted from the directory.
	EndRemoved = &End{Reason: "employee_deleted", Code: 1008, Text: "employee removed", Announce: true}
	// EndShutdown: this instance is shutting down; reconnect elsewhere.
	EndShutdown = &End{Reason: "shutdown", Code: 1012, Text: "server shutting down; reconnect", Announce: true}
	// EndMaxAge: the stream reached MAX_STREAM_AGE; reconnecting rebalances
	// connections across instances.
	EndMaxAge = &End{Reason: "max_age", Code: 1001, Text: "maximum stream age reached; reconnect", Announce: true}
	// EndStore: the store could not fill a gap in the sequence; the stream
	// ends rather than skip, and the client resumes from its position.
	EndStore = &End{Reason: "store_unavailable", Code: 1011, Text: "store unavailable; reconnect and resume", Announce: true}
	// EndError: the connection failed (a write error).
	EndError = &End{Reason: "error"}
)

// Ends is every End, for metrics tables and tests.
var Ends = []*End{
	EndClient, EndClientData, EndProtocol, EndTooLarge, EndTokenExpired, EndSlowConsumer, EndWriteTimeout,
	EndDeadPeer, EndRemoved, EndShutdown, EndMaxAge, EndStore, EndError,
}

// Refusals: why a stream cannot open. Nothing has been written when they are
// returned, so the caller answers with an HTTP error.
var (
	// ErrTooManyStreams: the employee holds the per-employee maximum.
	ErrTooManyStreams = errors.New("too many open streams for this employee")
	// ErrInstanceFull: this instance holds its maximum of streams.
	ErrInstanceFull = errors.New("this instance holds its maximum of streams")
	// ErrClosed: the hub is shutting down.
	ErrClosed = errors.New("hub closed")
)
