package engine

import (
	"io"
	"net"
	"path/filepath"
	"testing"
)

// A script's stdin ends (the client half-closes) while its output still streams back:
// the splice must pass the half-close on and keep the other direction open.
func TestSpliceKeepsTheAnswerFlowingAfterTheRequestEnds(t *testing.T) {
	dir := t.TempDir()
	front, back := listen(t, filepath.Join(dir, "front")), listen(t, filepath.Join(dir, "back"))
	go func() { // the Docker side: read the whole request, then answer
		c, err := back.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c)
		_, _ = c.Write(append([]byte("got "), req...))
	}()
	go func() { // the holder
		c, err := front.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := net.Dial("unix", back.Addr().String())
		if err != nil {
			return
		}
		defer r.Close()
		Splice(c, r)
	}()
	c, err := net.Dial("unix", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("echo hi")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got echo hi" {
		t.Fatalf("read %q, %v; want the answer after the request ended", got, err)
	}
}

func listen(t *testing.T, path string) net.Listener {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
