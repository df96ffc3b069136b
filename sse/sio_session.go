package sse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// The long-polling transport. A session is made by the handshake (GET
// without sid) and lives in the hub's table of sessions until it is
// upgraded to WebSocket or closed. Its client sends packets with POSTs and
// collects what waits for it with GETs that are held until there is
// something (at most a heartbeat: an empty wait ends in a ping). Once a
// CONNECT is accepted the session is its stream's conn: events wait in
// the session's buffer (out) for the next poll; beyond pollBuffered bytes,
// later ones wait in the stream's bounded queue, as on a full socket.

const (
	// pollBuffered is how many bytes may wait for a poll before deliveries
	// queue in the stream (as when a socket is full).
	pollBuffered = 256 << 10
	// pollBufferedMax is how many bytes a stream's worker may add (a
	// replay) before it waits for a poll to take them.
	pollBufferedMax = 2 << 20
	// sioClosedKeep is how long a closed session keeps its last packets for
	// a client that has not polled them yet.
	sioClosedKeep = 30 * time.Second
)

// sioSession is an Engine.IO long-polling session.
type sioSession struct {
	hub     *Hub
	sid     string
	created int64

	mu       sync.Mutex  // guards every field below
	header   http.Header // the handshake's credentials, until a CONNECT is accepted
	attempts int         // refused CONNECTs
	s        *stream     // the stream, once a CONNECT is accepted
	out      [][]byte    // packets for the next poll
	outBytes int
	notify   chan struct{} // closed when out gains packets or the session closes
	polling  bool          // a poll is waiting
	drained  chan struct{} // closed when a poll took out
	upgraded conn          // the WebSocket, after an upgrade: writes go there
	upgrade_ bool          // an upgrade is under way
	aborted  bool
	closed   bool
	closedAt int64
}

// sioSession returns the session sid, or nil.
func (h *Hub) sioSession(sid string) *sioSession {
	h.sioMu.Lock()
	defer h.sioMu.Unlock()
	return h.sioSessions[sid]
}

func (h *Hub) sioForget(sid string) {
	h.sioMu.Lock()
	delete(h.sioSessions, sid)
	h.sioMu.Unlock()
}

// sioHandshake opens a long-polling session: the open packet.
func (h *Hub) sioHandshake(w http.ResponseWriter, r *http.Request) error {
	now := h.now()
	sess := &sioSession{hub: h, sid: sioID(), created: now, header: credentials(r), notify: make(chan struct{})}
	h.sioMu.Lock()
	if h.closed {
		h.sioMu.Unlock()
		return &SIOError{Status: http.StatusServiceUnavailable, Detail: "shutting down; try another instance"}
	}
	h.sweepSIOLocked(now)
	if len(h.sioSessions) >= h.maxTotal {
		h.sioMu.Unlock()
		return &SIOError{Status: http.StatusServiceUnavailable, Detail: "this instance holds its maximum of streams (MAX_STREAMS); try another instance or later"}
	}
	if h.sioSessions == nil {
		h.sioSessions = make(map[string]*sioSession)
	}
	h.sioSessions[sess.sid] = sess
	h.sioMu.Unlock()
	writePoll(w, h.sioOpenPacket(sess.sid, []string{"websocket"}))
	return nil
}

// sweepSIOLocked drops sessions that never connected in time and closed
// ones kept long enough; at most once a second.
func (h *Hub) sweepSIOLocked(now int64) {
	if now-h.sioSwept < int64(time.Second) {
		return
	}
	h.sioSwept = now
	for sid, sess := range h.sioSessions {
		sess.mu.Lock()
		stale := (sess.s == nil && now-sess.created > int64(sioConnectTimeout)) ||
			(sess.closed && now-sess.closedAt > int64(sioClosedKeep))
		if stale && !sess.closed {
			sess.closeLocked(nil)
		}
		sess.mu.Unlock()
		if stale {
			delete(h.sioSessions, sid)
		}
	}
}

// closeSIOSessions closes the sessions without a stream (Close does the
// streams).
func (h *Hub) closeSIOSessions() {
	h.sioMu.Lock()
	defer h.sioMu.Unlock()
	for _, sess := range h.sioSessions {
		sess.mu.Lock()
		if sess.s == nil && !sess.closed {
			sess.closeLocked(nil)
		}
		sess.mu.Unlock()
	}
}

// writePoll answers a poll with packets, separated as Engine.IO 4 wants.
func writePoll(w http.ResponseWriter, packets ...[]byte) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=UTF-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	for i, p := range packets {
		if i > 0 {
			_, _ = w.Write([]byte{sioRecordSep})
		}
		_, _ = w.Write(p)
	}
}

// poll answers a GET: what waits, or what comes within a heartbeat (else
// a ping). One poll at a time.
func (sess *sioSession) poll(w http.ResponseWriter, r *http.Request) error {
	sess.mu.Lock()
	if sess.polling || sess.upgraded != nil {
		sess.mu.Unlock()
		return sioBad("a poll is already waiting, or the session moved to WebSocket")
	}
	if sess.upgrade_ && len(sess.out) == 0 {
		sess.out = [][]byte{sioNoopPacket} // the client is moving to WebSocket
	}
	if len(sess.out) == 0 && !sess.closed {
		sess.polling = true
		t := time.NewTimer(sess.hub.heartbeat)
		for len(sess.out) == 0 && !sess.closed {
			ch := sess.notify
			sess.mu.Unlock()
			stop := false
			select {
			case <-ch:
			case <-r.Context().Done():
				stop = true
			case <-t.C:
				stop = true
			}
			sess.mu.Lock()
			if stop {
				break
			}
		}
		t.Stop()
		sess.polling = false
	}
	out := sess.out
	s := sess.s
	sess.out, sess.outBytes = nil, 0
	sess.signalDrainedLocked()
	closed := sess.closed
	sess.mu.Unlock()
	if closed && len(out) == 0 {
		sess.hub.sioForget(sess.sid)
		out = [][]byte{sioPacketClose}
	}
	if len(out) == 0 {
		if r.Context().Err() != nil {
			return nil
		}
		out = [][]byte{sioPingFrame[2:]} // keeps a client that has not connected yet alive
	}
	writePoll(w, out...)
	if s != nil {
		s.resume()
	}
	return nil
}

// receive handles a POST of packets from the client.
func (sess *sioSession) receive(w http.ResponseWriter, r *http.Request, authn SIOAuthenticator) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, SIOMaxPayload))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &SIOError{Status: http.StatusRequestEntityTooLarge, Detail: "at most 64 KiB of packets per request (maxPayload)"}
		}
		return sioBad("cannot read the packets")
	}
	sess.mu.Lock()
	s, closed, upgraded := sess.s, sess.closed, sess.upgraded != nil
	sess.mu.Unlock()
	if closed || upgraded {
		return sioBad("the session is closed, or moved to WebSocket")
	}
	if s != nil {
		s.ws.pingedAt.Store(0) // any packet answers a ping
	}
	for _, p := range bytes.Split(body, []byte{sioRecordSep}) {
		if len(p) >= 2 && p[0] == '4' && p[1] == '0' && s == nil {
			s = sess.connect(r.Context(), p, authn)
			continue
		}
		ignored, end := sioClassify(false, p[:min(len(p), 2)])
		if ignored {
			sess.hub.stats.ignored[TransportSIO].Add(1)
		}
		if end != nil {
			if s != nil {
				s.stop(end)
			} else {
				sess.mu.Lock()
				sess.closeLocked(nil)
				sess.mu.Unlock()
			}
			break
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
	return nil
}

// connect decides a CONNECT sent over polling; an accepted one starts the
// stream with this session as its conn. It returns the stream, or nil.
func (sess *sioSession) connect(ctx context.Context, p []byte, authn SIOAuthenticator) *stream {
	h := sess.hub
	sess.mu.Lock()
	hd := sess.header
	sess.mu.Unlock()
	s, answer := h.sioOpen(ctx, p, hd, authn)
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		if s != nil {
			s.abandon()
		}
		return nil
	}
	sess.appendLocked(answer)
	if s == nil {
		sess.attempts++
		if sess.attempts >= sioMaxAttempts {
			sess.closeLocked(nil)
		}
		sess.mu.Unlock()
		return nil
	}
	sess.s, sess.header = s, nil
	sess.mu.Unlock()
	s.start(sess)
	return s
}

// appendLocked adds a packet for the next poll and wakes a waiting one.
func (sess *sioSession) appendLocked(p []byte) {
	sess.out = append(sess.out, p)
	sess.outBytes += len(p)
	sess.notifyLocked()
}

func (sess *sioSession) notifyLocked() {
	close(sess.notify)
	sess.notify = make(chan struct{})
}

func (sess *sioSession) signalDrainedLocked() {
	if sess.drained != nil {
		close(sess.drained)
		sess.drained = nil
	}
}

// closeLocked ends the session with final (server frames) as its last
// packets; the next poll gets them, then the session is forgotten.
func (sess *sioSession) closeLocked(final []byte) {
	if sess.closed {
		return
	}
	serverFrames(final, func(op ws.OpCode, payload []byte) {
		sess.out = append(sess.out, sioPacketOf(op, payload))
	})
	sess.closed, sess.closedAt = true, sess.hub.now()
	sess.signalDrainedLocked()
	sess.notifyLocked()
}

// The session is its stream's conn (see conn): while polling, frames wait
// in out as packets; after an upgrade, everything goes to the WebSocket.

func (sess *sioSession) tryWrite(b []byte) (bool, *End) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	switch {
	case sess.upgraded != nil:
		return sess.upgraded.tryWrite(b)
	case sess.closed:
		return false, EndError
	case sess.outBytes >= pollBuffered:
		return false, nil
	}
	serverFrames(b, func(op ws.OpCode, payload []byte) { sess.appendLocked(sioPacketOf(op, payload)) })
	return true, nil
}

func (sess *sioSession) write(bufs [][]byte) *End {
	deadline := time.Now().Add(writeTimeout)
	for {
		sess.mu.Lock()
		switch {
		case sess.upgraded != nil:
			up := sess.upgraded
			sess.mu.Unlock()
			return up.write(bufs)
		case sess.closed || sess.aborted:
			sess.mu.Unlock()
			return EndError
		case sess.outBytes < pollBufferedMax:
			// During an upgrade too: the client finishes its POSTs before
			// it moves, and what waits goes to the WebSocket first.
			for _, b := range bufs {
				serverFrames(b, func(op ws.OpCode, payload []byte) { sess.appendLocked(sioPacketOf(op, payload)) })
			}
			sess.mu.Unlock()
			return nil
		}
		if sess.drained == nil {
			sess.drained = make(chan struct{})
		}
		ch := sess.drained
		sess.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			return EndWriteTimeout
		}
	}
}

func (sess *sioSession) schedule() {
	s := sess.s
	sess.hub.goWork(func() { s.work() })
}

func (sess *sioSession) abort() {
	sess.mu.Lock()
	sess.aborted = true
	sess.signalDrainedLocked()
	up := sess.upgraded
	sess.mu.Unlock()
	if up != nil {
		up.abort()
	}
}

func (sess *sioSession) close(final []byte) {
	sess.mu.Lock()
	if up := sess.upgraded; up != nil {
		sess.mu.Unlock()
		up.close(final)
		return
	}
	sess.closeLocked(final)
	sess.mu.Unlock()
}

// upgrade runs the upgrade of the session to the WebSocket c: the probe
// ("2probe" answered "3probe"), a noop that ends a waiting poll, then the
// client's upgrade packet. It returns the session's stream (nil before a
// CONNECT was accepted; then the session ends here and hd are its
// credentials, for the WebSocket to carry on) and false when the upgrade
// failed.
func (sess *sioSession) upgrade(c *sioWS) (s *stream, hd http.Header, ok bool) {
	p, _, err := c.next(time.Now().Add(sioUpgradeTimeout))
	if err != nil || string(p) != "2probe" {
		return nil, nil, false
	}
	if c.sendFrames(sioPongProbe) != nil {
		return nil, nil, false
	}
	sess.mu.Lock()
	if sess.closed || sess.upgrade_ || sess.upgraded != nil {
		sess.mu.Unlock()
		return nil, nil, false
	}
	sess.upgrade_ = true
	if sess.polling {
		sess.appendLocked(sioNoopPacket)
	}
	sess.mu.Unlock()
	for {
		p, _, err = c.next(time.Now().Add(sioUpgradeTimeout))
		if err != nil {
			sess.mu.Lock()
			sess.upgrade_ = false
			sess.signalDrainedLocked()
			s := sess.s
			sess.mu.Unlock()
			if s != nil {
				s.resume()
			}
			return nil, nil, false
		}
		if string(p) == "5" {
			break
		}
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed {
		return nil, nil, false
	}
	if sess.s != nil {
		return sess.s, nil, true
	}
	// Not connected yet: what waited goes to the WebSocket, which now
	// serves the CONNECT; the polling session is done.
	var b []byte
	for _, p := range sess.out {
		b = appendWSFrame(b, opText, p)
	}
	if len(b) > 0 && c.sendFrames(b) != nil {
		return nil, nil, false
	}
	sess.out, sess.closed, sess.closedAt = nil, true, sess.hub.now()
	sess.hub.sioForget(sess.sid)
	return nil, sess.header, true
}

// attach makes the WebSocket wc the session's conn, after writing what
// waited for a poll. It reports false when the stream ended meanwhile
// (what it said at the end is written, and the caller closes wc).
func (sess *sioSession) attach(wc conn) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var b []byte
	for _, p := range sess.out {
		if bytes.Equal(p, sioPacketClose) {
			b = append(b, closeFrame(uint16(ws.StatusGoingAway), "")...)
			continue
		}
		b = appendWSFrame(b, opText, p)
	}
	sess.out, sess.outBytes = nil, 0
	if len(b) > 0 {
		if ok, _ := wc.tryWrite(b); !ok {
			_ = wc.write([][]byte{b})
		}
	}
	sess.hub.sioForget(sess.sid)
	if sess.closed {
		return false
	}
	sess.upgraded, sess.upgrade_ = wc, false
	sess.signalDrainedLocked()
	sess.notifyLocked()
	return true
}
