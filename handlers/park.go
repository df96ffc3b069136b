package handlers

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/corp/herald/sse"
)

// Parked streams.
//
// An idle SSE stream served the ordinary way costs a net/http connection
// goroutine (whose stack grew in the handler chain and the store calls of the
// handshake), a background-read goroutine, 10 KiB of read and write buffers,
// a ticker and a timer: about 45 KiB. After the handshake and the replay, an
// HTTP/1.1 stream is instead taken over from net/http (hijacked) and parked:
// net/http's goroutine returns and its buffers go, and one new goroutine,
// with a fresh small stack, blocks reading one byte from the connection. That
// read notices the client leaving; its deadline drives the heartbeat and the
// token's expiry; and the hub wakes it by moving the deadline into the past.
// Writes are chunked HTTP/1.1, straight to the socket, with their own
// deadline.

// longAgo is a deadline in the past: setting it wakes a blocked read (or
// fails a write) at once.
var longAgo = time.Unix(1, 0)

// errClientSentData ends a stream whose client sent bytes after its request;
// an SSE client has nothing to say.
var errClientSentData = errors.New("client sent data on an event stream")

// parkedFrames writes an SSE stream on a hijacked HTTP/1.1 connection as
// chunked transfer encoding.
type parkedFrames struct {
	conn    net.Conn
	woke    atomic.Bool // set by wake before it moves the read deadline
	aborted atomic.Bool
}

func (f *parkedFrames) transport() string { return "sse" }

// wake makes the parked read return now. It is safe from any goroutine and
// does not block.
func (f *parkedFrames) wake() {
	f.woke.Store(true)
	_ = f.conn.SetReadDeadline(longAgo)
}

// abort fails any write in progress and wakes the reader.
func (f *parkedFrames) abort(error) {
	f.aborted.Store(true)
	_ = f.conn.SetWriteDeadline(longAgo)
	f.wake()
}

// open is a no-op: the response head and preamble go out with the hijack.
func (f *parkedFrames) open(string) error { return nil }

func (f *parkedFrames) events(evs []*sse.Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := 0
	for _, ev := range evs {
		n += len(ev.SSE())
	}
	bufs := make(net.Buffers, 0, len(evs)+2)
	bufs = append(bufs, chunkHeader(n))
	for _, ev := range evs {
		bufs = append(bufs, ev.SSE())
	}
	bufs = append(bufs, crlf)
	return f.writeBuffers(bufs)
}

func (f *parkedFrames) heartbeat() error { return f.writeChunk(heartbeatBytes) }

func (f *parkedFrames) control(ev *sse.Event) error { return f.writeChunk(ev.SSE()) }

var (
	crlf           = []byte("\r\n")
	heartbeatBytes = sse.AppendComment(nil, "heartbeat")
)

func chunkHeader(n int) []byte {
	b := strconv.AppendInt(make([]byte, 0, 12), int64(n), 16)
	return append(b, '\r', '\n')
}

func (f *parkedFrames) writeChunk(b []byte) error {
	return f.writeBuffers(net.Buffers{chunkHeader(len(b)), b, crlf})
}

func (f *parkedFrames) writeBuffers(bufs net.Buffers) error {
	if err := armWriteDeadline(&f.aborted, f.conn.SetWriteDeadline); err != nil {
		return err
	}
	_, err := bufs.WriteTo(f.conn)
	return err
}

// finish ends the response properly when the stream ended cleanly (the last
// chunk tells the client the body is complete), then closes the connection.
func (f *parkedFrames) finish(clean bool) {
	if clean && !f.aborted.Load() {
		_ = f.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = f.conn.Write([]byte("0\r\n\r\n"))
	}
	_ = f.conn.Close()
}

// canPark reports whether a request's stream can be parked: HTTP/1.1 only
// (HTTP/2 streams cannot be taken over; HTTP/1.0 has no chunked encoding).
func (h *Handler) canPark(r *http.Request) bool {
	return h.park && r.ProtoMajor == 1 && r.ProtoMinor == 1
}

// hijackSSE takes the connection over from net/http and writes the response
// head (with the headers set so far, CORS ones included) and the preamble.
func hijackSSE(w http.ResponseWriter, startID string) (net.Conn, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close") // the connection is the stream's alone
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if sw, ok := w.(*statusWriter); ok {
		sw.status = http.StatusOK // for the access log: the head goes out below
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	head.Write(crlf)
	preamble := appendPreamble(nil, startID)
	head.Write(chunkHeader(len(preamble)))
	head.Write(preamble)
	head.Write(crlf)
	_ = brw // nothing is buffered: an SSE client sends nothing after its request
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// runParked serves a parked stream until the client leaves, the hub ends it
// or the token expires. Its one goroutine is blocked in a one-byte read whose
// deadline is the next thing to do: a heartbeat, the expiry, a replay retry,
// or now, when the hub woke it.
func (s *stream) runParked(ctx context.Context, f *parkedFrames) (err error) {
	defer func() {
		s.h.metrics.streamClosed(f.transport(), err)
		f.finish(errors.Is(err, errTokenExpired))
	}()
	defer s.sub.Close()
	var buf [1]byte
	nextBeat := time.Now().Add(s.h.heartbeat)
	retryAt := time.Now().Add(catchUpRetry)
	// The work of a wake-up (writes, store reads) runs on a short-lived
	// goroutine: it needs a deeper stack than a blocked read, and this
	// goroutine, which lives as long as the stream, then keeps the minimal
	// one. A stuck write still holds up only this stream.
	done := make(chan error, 1)
	work := func() { done <- s.tick(ctx, &nextBeat, &retryAt) }
	for {
		if s.sub.Ended() {
			return s.sub.Err()
		}
		deadline := nextBeat
		if s.id.ExpiresAt.Before(deadline) {
			deadline = s.id.ExpiresAt
		}
		if s.replayDue && retryAt.Before(deadline) {
			deadline = retryAt
		}
		_ = f.conn.SetReadDeadline(deadline)
		// A wake-up between the deadline above and the read is not lost: wake
		// sets woke before it moves the deadline.
		if !f.woke.Swap(false) {
			_, err := f.conn.Read(buf[:])
			if err == nil {
				return errClientSentData
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil // the client left
			}
			f.woke.Store(false)
		}
		go work()
		if err := <-done; err != nil {
			return err
		}
	}
}

// tick does what is due for a parked stream: the queue, the expiry, a replay
// retry, the heartbeat.
func (s *stream) tick(ctx context.Context, nextBeat, retryAt *time.Time) error {
	if s.sub.Ended() {
		return s.sub.Err()
	}
	now := time.Now()
	if !now.Before(s.id.ExpiresAt) {
		return s.expire()
	}
	if err := s.flushPending(ctx); err != nil {
		return err
	}
	if s.replayDue && !now.Before(*retryAt) {
		if err := s.replay(ctx); err != nil {
			return err
		}
		*retryAt = now.Add(catchUpRetry)
	}
	if !now.Before(*nextBeat) {
		if err := s.out.heartbeat(); err != nil {
			return err
		}
		*nextBeat = now.Add(s.h.heartbeat)
	}
	return nil
}
