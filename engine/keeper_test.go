package engine

import (
	"bytes"
	"testing"
)

func TestReadyWriterPassesTheEntrypointsOutputAndSwallowsTheReadyLine(t *testing.T) {
	var out bytes.Buffer
	w := newReadyWriter(&out)
	for _, chunk := range []string{"entrypoint ", "says hi\nec2-executor: job cont", "ainer ready\n", "after\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.ready:
	default:
		t.Fatal("the ready line split across writes was not seen")
	}
	if out.String() != "entrypoint says hi\n" {
		t.Errorf("passed on %q", out.String())
	}
}

func TestReadyWriterFlushesALastLineWithoutNewline(t *testing.T) {
	var out bytes.Buffer
	w := newReadyWriter(&out)
	_, _ = w.Write([]byte("fatal: no config"))
	w.flush()
	if out.String() != "fatal: no config" {
		t.Errorf("got %q", out.String())
	}
}
