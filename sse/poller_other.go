//go:build !linux

package sse

import (
	"errors"
	"net"
)

// Without epoll there is no poller: taken-over streams run on goroutines
// of their own (netConn).
type poller struct{}

type fdConn = netConn

func startPoller(*Hub) (*poller, error) { return nil, errors.New("no poller on this platform") }

func (*poller) stop() {}

func (*poller) takeOver(net.Conn, *stream, []byte) (*fdConn, error) {
	return nil, errors.New("no poller on this platform")
}
