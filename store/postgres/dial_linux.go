package postgres

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setUserTimeout sets TCP_USER_TIMEOUT: how long sent data may stay
// unacknowledged before the kernel drops the connection.
func setUserTimeout(c syscall.RawConn, d time.Duration) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}

// closedByPeer reports whether the server has closed c, or sent something
// unasked, while it sat in the pool: a peek that neither blocks nor takes
// the bytes. PostgreSQL closes its connections when it shuts down (after
// an error message), so after a restart every pooled connection is one of
// these; found before a statement is sent, it is discarded and another is
// taken, and nothing is in doubt.
func closedByPeer(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		perr error
		buf  [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	if err != nil {
		return true
	}
	switch {
	case perr == unix.EAGAIN || perr == unix.EWOULDBLOCK || perr == unix.EINTR:
		return false // nothing to read: alive and quiet
	case perr != nil:
		return true // reset
	default:
		return true // closed (0 bytes), or the server spoke unasked
	}
}
