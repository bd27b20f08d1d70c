package engine

import (
	"net"
	"syscall"
)

// quickAckConn acknowledges every segment it reads at once (TCP_QUICKACK, which
// Linux clears again after use, so it is set around each read).
//
// Why: OpenSSH's sshd sets TCP_NODELAY only for interactive sessions, so on a
// forwarded channel (the worker's Docker socket) Nagle's algorithm holds the small
// second segment of an answer until the first is acknowledged, and Linux delays
// that acknowledgement by up to 40 ms when the reader has nothing to send. A Docker
// API call through the tunnel took 45 ms instead of 4, in about one stage in two,
// and a run stage cost 1.5× a local `docker exec` instead of about as much.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

// withQuickAck wraps a TCP connection; any other is returned as it is.
func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: c, raw: raw}
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	c.quickAck()
	n, err := c.Conn.Read(p)
	c.quickAck()
	return n, err
}

func (c *quickAckConn) quickAck() {
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
