//go:build linux

package engine

import (
	"io"
	"net"
	"testing"
)

// The SSH connection to a worker is wrapped so that it acknowledges at once, and
// still reads what the other side wrote, in order, to the end.
func TestQuickAckConnReadsThrough(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		for _, part := range []string{"HTTP/1.1 200 OK\r\n", "\r\n", "body"} {
			_, _ = c.Write([]byte(part))
		}
		c.Close()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	w := withQuickAck(c)
	if _, ok := w.(*quickAckConn); !ok {
		t.Fatalf("a TCP connection was not wrapped: %T", w)
	}
	got, err := io.ReadAll(w)
	if err != nil || string(got) != "HTTP/1.1 200 OK\r\n\r\nbody" {
		t.Fatalf("read %q, %v", got, err)
	}
	w.Close()
	if p, _ := net.Pipe(); withQuickAck(p) != p {
		t.Error("a connection that is not TCP was wrapped")
	}
}

// Only answers are acknowledged at once: a write arms it, a short read (an
// answer's segment) acknowledges, and a read that fills its buffer (a stream)
// disarms it until the next write.
func TestQuickAckArmsOnWriteAndDisarmsOnAStream(t *testing.T) {
	local, remote := net.Pipe()
	defer local.Close()
	defer remote.Close()
	acks := 0
	c := &quickAckConn{Conn: local, ack: func() { acks++ }}
	send := func(s string) {
		go func() { _, _ = remote.Write([]byte(s)) }()
	}
	read := func(n int) {
		t.Helper()
		if _, err := c.Read(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _, _ = io.ReadAll(remote) }()
	send("short")
	read(64) // nothing written yet: not armed
	if acks != 0 {
		t.Fatalf("acknowledged before any write: %d", acks)
	}
	if _, err := c.Write([]byte("GET /_ping")); err != nil {
		t.Fatal(err)
	}
	send("OK")
	read(64)
	if acks != 1 {
		t.Fatalf("an answer after a write: %d acknowledgements, want 1", acks)
	}
	send("0123456789abcdef")
	read(16) // fills the buffer: a stream
	send("tail")
	read(64)
	if acks != 1 {
		t.Fatalf("a stream was acknowledged segment by segment: %d", acks)
	}
}
