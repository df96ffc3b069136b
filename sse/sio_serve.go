package sse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
)

// SIOConnect is a Socket.IO client's CONNECT: the auth object it sent and
// the credentials its handshake request carried.
type SIOConnect struct {
	// Auth is the CONNECT packet's auth object (raw JSON); nil when the
	// client sent none.
	Auth json.RawMessage
	// Header holds the Authorization and Cookie headers of the Engine.IO
	// handshake request.
	Header http.Header
}

// SIOAuthenticator decides a CONNECT: the stream to open, or why not (a
// *SIORefusal becomes the client's connect_error; any other error is
// refused as unavailable).
type SIOAuthenticator func(ctx context.Context, c SIOConnect) (Params, error)

// SIOError is a Socket.IO request refused before anything was written
// (an unknown session, a wrong protocol version, a body over the limit);
// the caller answers it with Status.
type SIOError struct {
	Status int
	Detail string
}

func (e *SIOError) Error() string { return e.Detail }

func sioBad(detail string) *SIOError { return &SIOError{Status: http.StatusBadRequest, Detail: detail} }

// ServeSocketIO serves one request of the Socket.IO endpoint, whose
// Origin the caller has checked: an Engine.IO handshake (long-polling or
// WebSocket), a poll, a POST of client packets, or an upgrade of a
// polling session to WebSocket. A client's CONNECT is decided by authn;
// an accepted one opens a stream in the hub like /events and /ws do. It
// returns an *SIOError when the request is refused before anything was
// written.
func (h *Hub) ServeSocketIO(w http.ResponseWriter, r *http.Request, authn SIOAuthenticator) error {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		return sioBad("unsupported protocol version: EIO must be 4 (socket.io-client v3 or v4)")
	}
	sid := q.Get("sid")
	switch q.Get("transport") {
	case "polling":
		if sid == "" {
			if r.Method != http.MethodGet {
				return sioBad("an Engine.IO handshake is a GET")
			}
			return h.sioHandshake(w, r)
		}
		sess := h.sioSession(sid)
		if sess == nil {
			return sioBad("unknown session id (sid)")
		}
		if r.Method == http.MethodPost {
			return sess.receive(w, r, authn)
		}
		return sess.poll(w, r)
	case "websocket":
		if r.Method != http.MethodGet || !headerHas(r.Header, "Upgrade", "websocket") {
			return sioBad("transport=websocket needs a WebSocket handshake")
		}
		var sess *sioSession
		if sid != "" {
			if sess = h.sioSession(sid); sess == nil {
				return sioBad("unknown session id (sid)")
			}
		}
		return h.sioWebSocket(w, r, sess, authn)
	}
	return sioBad("unknown transport: must be polling or websocket")
}

func headerHas(hd http.Header, name, value string) bool {
	for _, v := range hd.Values(name) {
		if bytes.EqualFold([]byte(v), []byte(value)) {
			return true
		}
	}
	return false
}

// credentials keeps the headers an authenticator may read.
func credentials(r *http.Request) http.Header {
	hd := http.Header{}
	for _, k := range []string{"Authorization", "Cookie"} {
		if v := r.Header.Values(k); len(v) > 0 {
			hd[k] = append([]string(nil), v...)
		}
	}
	return hd
}

// sioOpen decides a CONNECT packet p: the opened stream (owned by the
// caller until start) and the answer to send first, or the refusal to send.
func (h *Hub) sioOpen(ctx context.Context, p []byte, hd http.Header, authn SIOAuthenticator) (*stream, []byte) {
	authObj, refusal := sioConnectPayload(p)
	if refusal != nil {
		return nil, refusal.packet()
	}
	params, err := authn(ctx, SIOConnect{Auth: authObj, Header: hd})
	if err != nil {
		var r *SIORefusal
		if !errors.As(err, &r) {
			h.log.Warn("socket.io connect failed", "err", err)
			r = hubRefusal(err)
		}
		return nil, r.packet()
	}
	s, err := h.open(ctx, params, sioFraming{})
	if err != nil {
		return nil, hubRefusal(err).packet()
	}
	s.ws = &wsState{sio: true}
	return s, sioConnected()
}

// sioWebSocket serves a WebSocket: a new Engine.IO session (sess nil) or
// the upgrade of a polling one. Until a CONNECT is accepted it reads the
// client's frames itself; then the stream runs like any WebSocket stream
// (on the poller, or on a goroutine of its own).
func (h *Hub) sioWebSocket(w http.ResponseWriter, r *http.Request, sess *sioSession, authn SIOAuthenticator) error {
	recordStatus(w, http.StatusSwitchingProtocols)
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Connection", "Upgrade")
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return nil // the upgrader answered
	}
	c := &sioWS{nc: nc, br: rw.Reader, hub: h, tls: r.TLS != nil}
	var hd http.Header
	if sess == nil {
		hd = credentials(r)
		if err := c.send(h.sioOpenPacket(sioID(), []string{})); err != nil {
			nc.Close()
			return nil
		}
	} else {
		s, hdr, ok := sess.upgrade(c)
		if !ok {
			nc.Close()
			return nil
		}
		if s != nil {
			h.serveSIOUpgraded(sess, s, c)
			return nil
		}
		hd = hdr // upgraded before a CONNECT was accepted
	}
	s := c.awaitConnect(hd, authn)
	if s == nil {
		nc.Close()
		return nil
	}
	m := modePoller
	if h.goroutines || h.poller == nil || r.TLS != nil {
		m = modeParked
	}
	h.serveTakenOver(s, nc, c.rest(), m)
	return nil
}

// sioWS reads and writes a Socket.IO WebSocket while no stream owns it
// (before its CONNECT is accepted, during an upgrade).
type sioWS struct {
	hub *Hub
	nc  net.Conn
	br  *bufio.Reader
	tls bool
}

// send writes packets, each as one text frame.
func (c *sioWS) send(packets ...[]byte) error {
	var b []byte
	for _, p := range packets {
		b = appendWSFrame(b, opText, p)
	}
	return c.sendFrames(b)
}

func (c *sioWS) sendFrames(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	_ = c.nc.SetWriteDeadline(time.Time{})
	return err
}

// rest returns what the client sent that was read but not used.
func (c *sioWS) rest() []byte {
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		return bytes.Clone(b)
	}
	return nil
}

var errSIOClosed = errors.New("socket.io client closed")

// next returns the next data message (its payload, unmasked), answering
// pings, until deadline. Control frames are answered; a close ends it.
func (c *sioWS) next(deadline time.Time) (payload []byte, binary bool, err error) {
	_ = c.nc.SetReadDeadline(deadline)
	defer c.nc.SetReadDeadline(time.Time{})
	for {
		hd, err := ws.ReadHeader(c.br)
		if err != nil {
			return nil, false, err
		}
		if !hd.Masked || hd.Rsv != 0 || hd.Length > SIOMaxPayload {
			return nil, false, errSIOClosed
		}
		p := make([]byte, hd.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, false, err
		}
		ws.Cipher(p, hd.Mask, 0)
		switch hd.OpCode {
		case ws.OpPing:
			if err := c.sendFrames(appendWSFrame(nil, opPong, p)); err != nil {
				return nil, false, err
			}
		case ws.OpPong:
		case ws.OpClose:
			_ = c.sendFrames(closeFrame(uint16(ws.StatusNormalClosure), ""))
			return nil, false, errSIOClosed
		case ws.OpContinuation:
			// A fragment of an ignored message.
		default:
			return p, hd.OpCode == ws.OpBinary, nil
		}
	}
}

// awaitConnect reads the client's packets until a CONNECT is accepted:
// refused ones are answered with CONNECT_ERROR (the client may retry, for
// example with a fresh token), events are ignored and counted, pings are
// sent every heartbeat. It returns the opened stream, whose CONNECT
// answer has been written, or nil when the client left, broke the
// protocol, or did not connect in time.
func (c *sioWS) awaitConnect(hd http.Header, authn SIOAuthenticator) *stream {
	h := c.hub
	giveUp := time.Now().Add(sioConnectTimeout)
	for attempts := 0; attempts < sioMaxAttempts; {
		deadline := time.Now().Add(h.heartbeat)
		if deadline.After(giveUp) {
			deadline = giveUp
		}
		p, binary, err := c.next(deadline)
		if isTimeout(err) {
			if time.Now().After(giveUp) {
				_ = c.sendFrames(sioCloseFrame)
				return nil
			}
			if c.sendFrames(sioPingFrame) != nil {
				return nil
			}
			continue
		}
		if err != nil {
			return nil
		}
		if binary || len(p) < 2 || p[0] != '4' || p[1] != '0' {
			if ignored, end := sioClassify(binary, p[:min(len(p), 2)]); end != nil {
				return nil
			} else if ignored {
				h.stats.ignored[TransportSIO].Add(1)
			}
			continue
		}
		attempts++
		ctx, cancel := context.WithTimeout(h.base, storeTimeout)
		s, answer := h.sioOpen(ctx, p, hd, authn)
		cancel()
		if err := c.send(answer); err != nil {
			if s != nil {
				s.abandon()
			}
			return nil
		}
		if s != nil {
			return s
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveSIOUpgraded moves an upgraded polling session's stream onto its
// WebSocket: on the poller (or a goroutine of its own for TLS), with what
// waited for the next poll written first.
func (h *Hub) serveSIOUpgraded(sess *sioSession, s *stream, c *sioWS) {
	rest := c.rest()
	var wc conn
	var parked *netConn
	if h.goroutines || h.poller == nil || c.tls {
		parked = &netConn{nc: c.nc, s: s}
		wc = parked
	} else {
		fc, err := h.poller.takeOver(c.nc, s, rest)
		if err != nil {
			h.log.Warn("cannot poll the stream's connection", "err", err)
			s.stop(EndError)
			return
		}
		wc = fc
	}
	if !sess.attach(wc) {
		wc.close(nil)
		return
	}
	if parked != nil {
		h.goWork(func() { parked.readLoop(rest) })
	}
	s.resume()
}

// readLoop reads what the client sends on a conn that a Socket.IO
// session writes through (after an upgrade, without the poller), until
// the connection ends.
func (c *netConn) readLoop(buffered []byte) {
	if len(buffered) > 0 {
		c.input(buffered)
	}
	buf := make([]byte, 512)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.input(buf[:n])
		}
		if err != nil {
			c.s.stop(EndClient)
			return
		}
	}
}
