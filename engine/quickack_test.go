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
