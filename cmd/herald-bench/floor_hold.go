package main

import (
	"io"
	"net"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

func newHolder(kind string) (streamHolder, error) {
	var h streamHolder
	var err error
	if kind == "epoll" {
		h, err = newEpollHolder()
	} else {
		h, err = newNbioHolder()
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// nbioHolder holds taken-over streams in nbio: one poller goroutine (as
// Herald's own poller), level-triggered as nbio is by default, writes that
// nbio buffers when the socket is full, and what a client sends read and
// dropped.
type nbioHolder struct {
	engine *nbio.Engine
}

func newNbioHolder() (*nbioHolder, error) {
	logging.SetLevel(logging.LevelError)
	e := nbio.NewEngine(nbio.Config{Name: "floor", NPoller: 1})
	e.OnData(func(*nbio.Conn, []byte) {})
	e.OnClose(func(c *nbio.Conn, _ error) {
		if gone, ok := c.Session().(func()); ok {
			gone()
		}
	})
	if err := e.Start(); err != nil {
		return nil, err
	}
	return &nbioHolder{engine: e}, nil
}

func (h *nbioHolder) hold(nc net.Conn, gone func()) (io.Writer, error) {
	c, err := nbio.NBConn(nc) // a duplicate of the socket; nc is closed
	if err != nil {
		return nil, err
	}
	c.SetSession(gone)
	if _, err := h.engine.AddConn(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (h *nbioHolder) stop() { h.engine.Stop() }
