package workers

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakePool answers every request on a fresh socket with lines.
func fakePool(t *testing.T, lines ...string) string {
	socket := filepath.Join(t.TempDir(), "pool.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadBytes('\n')
			for _, line := range lines {
				if line == "hold" { // say nothing more, and keep the connection
					t.Cleanup(func() { c.Close() })
					break
				}
				_, _ = c.Write([]byte(line + "\n"))
			}
			if lines[len(lines)-1] != "hold" {
				c.Close()
			}
		}
	}()
	return socket
}

// A pool of an earlier release answers without a version: the driver refuses its
// answer, whatever it says, and the job launches its own worker with the reason.
func TestAPoolOfAnotherVersionIsNotBelieved(t *testing.T) {
	socket := fakePool(t, `{"lease":{"instance_id":"i-old"}}`)
	a, err := Claim(context.Background(), socket, ClaimRequest{Job: Job{Key: "1-a"}}, time.Second, time.Second, func(string) {})
	if !errors.Is(err, errNoPool) || a.Lease != nil || !strings.Contains(err.Error(), "this driver speaks pool protocol 2 and the pool on "+socket+" an older one") {
		t.Fatalf("got %+v, %v", a, err)
	}
}

// Every waiting line is passed on. A pool that goes away after saying it waits (a
// restart) leaves the job to launch its own worker; one that stays but says
// nothing more is a refusal (a system failure).
func TestWaitingLinesThenSilence(t *testing.T) {
	socket := fakePool(t, `{"version":2,"waiting":"launching a worker for this job"}`, `{"version":2,"waiting":"launched i-1"}`,
		`{"version":2,"claim":{"lease":{"instance_id":"i-1"},"launched":"in one call with 3 others"}}`)
	var said []string
	a, err := Claim(context.Background(), socket, ClaimRequest{}, time.Second, time.Second, func(w string) { said = append(said, w) })
	if err != nil || a.Lease == nil || a.Launched == "" || len(said) != 2 {
		t.Fatalf("got %+v, %v, waiting %q", a, err, said)
	}
	gone := fakePool(t, `{"version":2,"waiting":"launching"}`)
	_, err = Claim(context.Background(), gone, ClaimRequest{}, time.Second, time.Second, func(string) {})
	if !errors.Is(err, errNoPool) || !strings.Contains(err.Error(), "went away while launching") {
		t.Fatalf("a pool that went away: %v", err)
	}
	quiet := fakePool(t, `{"version":2,"waiting":"at the cap"}`, "hold")
	_, err = Claim(context.Background(), quiet, ClaimRequest{}, time.Second, 100*time.Millisecond, func(string) {})
	if !errors.Is(err, ErrPoolRefused) || !strings.Contains(err.Error(), "no answer while at the cap") {
		t.Fatalf("a pool that went quiet: %v", err)
	}
}
