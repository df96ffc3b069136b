//go:build !linux

package postgres

import (
	"net"
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keep-alives still notice a vanished server on an idle connection.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

// closedByPeer cannot peek here; a dead pooled connection then fails its
// first statement.
func closedByPeer(net.Conn) bool { return false }
