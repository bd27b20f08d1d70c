package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/workers"
)

const time2s = 2 * time.Second

// serving starts p's socket server for the test and returns its path.
func serving(t *testing.T, p *Pool) string {
	l, err := p.listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); l.Close(); <-done })
	return p.s.PoolSocket()
}

// rawLine sends one line on socket and returns the first line of the answer.
func rawLine(t *testing.T, socket, line string) workers.Answer {
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var a workers.Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return a
}

// A driver of an earlier release (its claim line has no version) is refused with
// a message naming both versions, and gets no worker, though one is idle.
func TestAClaimOfAnotherProtocolVersionIsRefused(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "k1", "i-1", "t3.micro")
	socket := serving(t, p)
	a := rawLine(t, socket, `{"job":{"key":"1-old"},"spec":{"types":["t3.micro"],"market":"on-demand"}}`)
	if a.Version != workers.ProtocolVersion || !strings.Contains(a.Error, "this pool speaks pool protocol 2 and the driver an older one") || a.Claim != nil {
		t.Fatalf("an unversioned claim got %+v", a)
	}
	a = rawLine(t, socket, `{"version":99,"status":true}`)
	if !strings.Contains(a.Error, "the driver 99") || a.Status != nil {
		t.Fatalf("a version 99 status request got %+v", a)
	}
	if a := rawLine(t, socket, `{"version":2}`); !strings.Contains(a.Error, "asks for nothing") {
		t.Fatalf("an empty request got %+v", a)
	}
	if a := rawLine(t, socket, `not json`); !strings.HasPrefix(a.Error, "unreadable request") {
		t.Fatalf("a line that is not JSON got %+v", a)
	}
	if n := p.book.count()[workers.PoolIdle]; n != 1 {
		t.Fatalf("%d idle after refusals, want 1", n)
	}
}

// One client call serves every kind: status through QueryStatus, a claim, and the
// release of the claimed worker (the pool keeps no claim it did not make).
func TestStatusClaimAndReleaseShareOneProtocol(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "k1", "i-1", "t3.micro")
	socket := serving(t, p)
	st, err := QueryStatus(context.Background(), socket)
	if err != nil || st.Workers[workers.PoolIdle] != 1 || len(st.Idle) != 1 || st.Idle[0] != "i-1" {
		t.Fatalf("status %+v, %v", st, err)
	}
	a, err := workers.Claim(context.Background(), socket, workers.ClaimRequest{Job: workers.Job{Key: "7-a"},
		Spec: workers.Spec{Types: []string{"t3.micro"}, Market: "on-demand"}}, time2s, time2s, func(string) {})
	if err != nil || a.Lease == nil || a.Lease.InstanceID != "i-1" {
		t.Fatalf("claim %+v, %v", a, err)
	}
	rel, err := workers.Ask(context.Background(), socket, workers.Request{Release: &workers.ReleaseRequest{Job: workers.Job{Key: "8-other"}, InstanceID: "i-1"}},
		time2s, time2s, func(string) {})
	if err != nil || rel.Release == nil || rel.Release.Kept || !strings.Contains(rel.Release.Why, "no claim of this job") {
		t.Fatalf("a release by another job got %+v, %v", rel, err)
	}
}
