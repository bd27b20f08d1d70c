package pool

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// eventually fails the test unless cond holds within five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
	}
}

// reservations counts the records reserved for claims that have an instance.
func reservations(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.book.Workers {
		if w.ReservedFor != nil && w.Lease.InstanceID != "" {
			n++
		}
	}
	return n
}

// Claims that miss together are launched with one RunInstances call, each worker
// reserved for its job and handed to it when its check passes; the worker of a job
// that stops waiting while it boots is the pool's, offered to no one until checked.
func TestClaimsThatMissTogetherShareOneLaunchAndEachGetsItsOwn(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	p.s.Pool.IdleCount = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.launcher(ctx)
	const n = 4
	answers, said := make([]workers.ClaimAnswer, n), make([][]string, n)
	gone := make(chan struct{}) // the last job's
	var wg sync.WaitGroup
	for i := range n {
		var g <-chan struct{}
		if i == n-1 {
			g = gone
		}
		wg.Go(func() {
			req := workers.ClaimRequest{Job: workers.Job{Key: fmt.Sprintf("%d-j", i)}, Launch: true,
				Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}
			answers[i] = p.claim(ctx, req, func(w string) { said[i] = append(said[i], w) }, g)
		})
	}
	eventually(t, "four workers launched and reserved", func() bool { return reservations(p) == n })
	if runs := f.Calls["RunInstances"]; runs != 1 {
		t.Fatalf("%d RunInstances calls for %d claims at once", runs, n)
	}
	close(gone)
	eventually(t, "the leaving job's worker unreserved", func() bool { return reservations(p) == n-1 })
	p.mu.Lock()
	for _, w := range p.book.Workers {
		if w.ReservedFor != nil { // what check does once the worker answers over SSH
			p.handOver(w, "127.0.1.9:22")
		}
	}
	p.mu.Unlock()
	wg.Wait()
	var ids []string
	for i, a := range answers[:n-1] {
		if a.Lease == nil || a.Lease.Source != workers.SourcePool || !strings.Contains(a.Launched, "with 3 other jobs' workers") {
			t.Fatalf("claim %d got %+v", i, a)
		}
		if len(said[i]) != 2 || !strings.HasPrefix(said[i][1], "launched instance "+a.Lease.InstanceID) {
			t.Errorf("claim %d was told %q", i, said[i])
		}
		ids = append(ids, a.Lease.InstanceID)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n-1 {
		t.Fatalf("a worker went to two jobs: %v", ids)
	}
	if a := answers[n-1]; a.Lease != nil || a.Error != "the job stopped waiting" {
		t.Fatalf("the job that left got %+v", a)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.book.count(); n[workers.PoolClaimed] != 3 || n[workers.PoolBooting] != 1 || p.pending != 0 {
		t.Fatalf("records %v, pending %d: want 3 claimed, the left job's booting, none pending", n, p.pending)
	}
}

// A launch EC2 refuses, or one that launches fewer than asked, sends each job to
// launch its own with the reason, and frees what it counted against the cap.
func TestALaunchThatFailsSendsTheJobsToLaunchTheirOwn(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	p.s.Pool.IdleCount, p.s.Pool.MaxInstances = 0, 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.launcher(ctx)
	req := workers.ClaimRequest{Job: workers.Job{Key: "1-j"}, Launch: true, Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}
	f.RunErr = provisiontest.APIError("InvalidAMIID.NotFound")
	a := p.claim(ctx, req, func(string) {}, nil)
	if a.Lease != nil || !strings.Contains(a.Miss, "the pool could not launch a worker for this job") || !strings.Contains(a.Miss, "InvalidAMIID.NotFound") {
		t.Fatalf("a refused launch answered %+v", a)
	}
	f.RunErr, f.Capacity = nil, 1
	var wg sync.WaitGroup
	answers := make([]workers.ClaimAnswer, 2)
	for i := range 2 {
		wg.Go(func() {
			r := req
			r.Job.Key = fmt.Sprintf("%d-k", i)
			answers[i] = p.claim(ctx, r, func(string) {}, nil)
		})
	}
	eventually(t, "the one worker EC2 launched reserved", func() bool { return reservations(p) == 1 })
	p.mu.Lock()
	for _, w := range p.book.Workers {
		if w.ReservedFor != nil {
			p.handOver(w, "127.0.1.9:22")
		}
	}
	p.mu.Unlock()
	wg.Wait()
	got := 0
	for _, a := range answers {
		if a.Lease != nil {
			got++
		} else if !strings.Contains(a.Miss, "EC2 launched 1 of the 2 instances asked for") {
			t.Errorf("the claim EC2 launched nothing for got %+v", a)
		}
	}
	if got != 1 || p.pending != 0 {
		t.Fatalf("%d of 2 claims got a worker, %d pending", got, p.pending)
	}
}

// The cleanups of a burst give their workers back together: the pool ends them
// with one TerminateInstances call, and each cleanup is told it has nothing left
// to end.
func TestReleasesThatComeTogetherEndWithOneCall(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.ender(ctx)
	const n = 5
	for i := range n {
		id := f.Launched(t, map[string]string{workers.TagJobKey: fmt.Sprintf("%d-j", i)})
		idle(p, fmt.Sprintf("k%d", i), id, "t3.micro")
		w := p.book.Workers[fmt.Sprintf("k%d", i)]
		w.State, w.ClaimedBy = workers.PoolClaimed, fmt.Sprintf("%d-j", i)
	}
	answers, ids := make([]workers.ReleaseAnswer, n), make([]string, n)
	for i := range n {
		ids[i] = p.book.Workers[fmt.Sprintf("k%d", i)].Lease.InstanceID
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = p.takeBack(ctx, workers.ReleaseRequest{Job: workers.Job{Key: fmt.Sprintf("%d-j", i)}, InstanceID: ids[i]})
		})
	}
	wg.Wait()
	for i, a := range answers {
		if !a.Ended || a.Kept {
			t.Fatalf("release %d: %+v", i, a)
		}
	}
	if calls := f.Calls["TerminateInstances"]; calls != 1 || len(f.Running()) != 0 || len(p.book.Workers) != 0 {
		t.Fatalf("%d TerminateInstances calls, running %v, records %d", calls, f.Running(), len(p.book.Workers))
	}
}

// A worker whose job saw EC2's spot notice is ended when it comes back, even where
// pool.max_builds would keep it for another job.
func TestAWorkerBackWithASpotNoticeIsEndedNotKept(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	p.s.Pool.MaxBuilds = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.ender(ctx)
	id := f.Launched(t, map[string]string{workers.TagJobKey: "1-j"})
	idle(p, "k", id, "t3.micro")
	w := p.book.Workers["k"]
	w.State, w.ClaimedBy = workers.PoolClaimed, "1-j"
	a := p.takeBack(ctx, workers.ReleaseRequest{Job: workers.Job{Key: "1-j"}, InstanceID: id, SpotNotice: true})
	if !a.Ended || a.Kept || !strings.Contains(a.Why, "spot") || len(f.Running()) != 0 {
		t.Fatalf("answer %+v, running %v", a, f.Running())
	}
}

// A spot claim takes an on-demand idle worker only where an open spot breaker made
// it so.
func TestASpotClaimTakesAnOnDemandWorkerOnlyUnderAnOpenBreaker(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "k", "i-od", "t3.micro")
	w := p.book.Workers["k"]
	w.Lease.Zone = "us-east-1a"
	req := workers.ClaimRequest{Job: workers.Job{Key: "1-j"}, Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketSpot}}
	if p.fits(w, req) {
		t.Fatal("a spot claim took an on-demand worker with no breaker open")
	}
	p.breakers = []workers.Breaker{{Type: "t3.micro", Zone: "us-east-1b"}}
	if p.fits(w, req) {
		t.Fatal("a breaker of another zone let a spot claim take an on-demand worker")
	}
	p.breakers = []workers.Breaker{{Type: "t3.micro", Zone: "us-east-1a"}}
	if !p.fits(w, req) {
		t.Fatal("a spot claim did not take the on-demand worker its breaker made")
	}
	req.Spec.Market = settings.MarketOnDemand
	w.Lease.Spot = true
	if p.fits(w, req) {
		t.Fatal("an on-demand claim took a spot worker")
	}
}

// A termination the pool decided on outlives a shutdown that begins meanwhile: the
// worker's record is gone already, and a cancelled call would leave it running.
func TestATerminationOutlivesTheShutdownThatBeginsDuringIt(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	id := f.Launched(t, map[string]string{workers.TagJobKey: "pool-a"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p.terminate(ctx, id, ReasonIdle, "idle longer than pool.idle_time")
	if running := f.Running(); len(running) != 0 {
		t.Fatalf("still running after a termination under a cancelled context: %v", running)
	}
}
