// Package tcpproxy is a TCP proxy for tests: it sits between a client and a
// server on loopback and fails on command, so tests can take a real
// dependency (PostgreSQL) away and bring it back.
//
//   - Cut closes every open connection and refuses new ones (they are
//     accepted and closed at once): the server is down.
//   - Stall keeps the connections open but stops passing bytes, and holds
//     new ones the same way: a half-open network, where nothing fails fast.
//   - Restore passes bytes again and accepts new connections.
package tcpproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards connections from its loopback address to a target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex // guards conns, cut, stalled, flowing and closed
	conns   map[net.Conn]struct{}
	cut     bool
	stalled bool
	flowing chan struct{} // closed when bytes may pass again
	closed  bool
	ended   int // connection pairs closed so far

	wg sync.WaitGroup // the accept loop and the pipes
}

// Start runs a proxy on 127.0.0.1 to target (host:port) until the test ends.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("tcpproxy: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address (host:port); clients connect here.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Closed returns how many proxied connections have ended so far, by
// either side or by Cut.
func (p *Proxy) Closed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.resumeLocked()
	p.closeConnsLocked()
}

// Stall stops passing bytes (both ways, on every connection, new ones
// included) until Restore, without closing anything.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.flowing = make(chan struct{})
	}
}

// Restore ends a Cut or a Stall.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.resumeLocked()
}

// Close stops the proxy and closes every connection. It is safe to call
// more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.resumeLocked()
	p.closeConnsLocked()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// resumeLocked lets held bytes pass. p.mu must be held.
func (p *Proxy) resumeLocked() {
	if p.stalled {
		p.stalled = false
		close(p.flowing)
	}
}

// closeConnsLocked closes every connection. p.mu must be held.
func (p *Proxy) closeConnsLocked() {
	p.ended += len(p.conns) / 2 // the pipes find them gone and do not count them again
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// track registers a connection pair, unless the proxy was cut or closed
// meanwhile.
func (p *Proxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		a.Close()
		b.Close()
		return false
	}
	p.conns[a] = struct{}{}
	p.conns[b] = struct{}{}
	return true
}

// end closes a pair and counts it, once.
func (p *Proxy) end(a, b net.Conn) {
	p.mu.Lock()
	if _, ok := p.conns[a]; ok {
		p.ended++
	}
	delete(p.conns, a)
	delete(p.conns, b)
	p.mu.Unlock()
	a.Close()
	b.Close()
}

// pipe copies src to dst. Its reader keeps reading while the proxy is
// stalled (the bytes wait in a queue), so a side that closes its end is
// noticed at once, as on a real half-open network; its writer holds the
// bytes until the proxy flows again.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	chunks := make(chan []byte, 256)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				p.end(src, dst)
				return
			}
		}
	}()
	for c := range chunks {
		p.waitFlowing()
		if _, err := dst.Write(c); err != nil {
			p.end(src, dst)
			for range chunks { // let the reader finish
			}
			return
		}
	}
}

// waitFlowing blocks while the proxy is stalled.
func (p *Proxy) waitFlowing() {
	p.mu.Lock()
	stalled, flowing := p.stalled, p.flowing
	p.mu.Unlock()
	if stalled {
		<-flowing
	}
}
