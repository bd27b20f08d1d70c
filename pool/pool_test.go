package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func testPool(t *testing.T, f *provisiontest.FakeEC2) *Pool {
	t.Helper()
	s := settings.Default()
	s.ManagerID = "m1"
	s.StateDir = t.TempDir()
	s.Instance.AMI = "ami-0123456789abcdef0"
	s.Instance.Types = []string{"t3.micro"}
	s.Instance.SubnetIDs = []string{"subnet-1"}
	s.Pool.IdleCount = 2
	p, err := New(s, Clients{EC2: f, SSM: provisiontest.NewSSM()}, hclog.NewNullLogger(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func idle(p *Pool, key, id, typ string) {
	p.book.Workers[key] = &Record{Key: key, State: workers.PoolIdle, Since: now.Add(-time.Minute),
		Lease: workers.Lease{InstanceID: id, Type: typ, Address: "127.0.1.9:22", ClientKey: "secret-" + key}}
}

func claimFor(p *Pool, job string, types ...string) workers.ClaimAnswer {
	return p.claim(context.Background(), workers.ClaimRequest{Job: workers.Job{Key: job},
		Spec: workers.Spec{Types: types, Market: settings.MarketOnDemand}}, func(string) {}, nil)
}

func TestAClaimIsOnDiskBeforeItIsAnswered(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "pool-a", "i-a", "t3.micro")
	a := claimFor(p, "42-abcd", "t3.micro")
	if a.Lease == nil || a.Lease.InstanceID != "i-a" || a.Lease.Source != workers.SourcePool || !a.ReadySince.Equal(now.Add(-time.Minute)) {
		t.Fatalf("answer %+v", a)
	}
	reopened, err := openBook(p.s.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if w := reopened.Workers["pool-a"]; w == nil || w.State != workers.PoolClaimed || w.ClaimedBy != "42-abcd" {
		t.Fatalf("after a restart the worker would be %+v", w)
	}
	if again := claimFor(p, "43-abcd", "t3.micro"); again.Lease != nil || !strings.Contains(again.Miss, "0 idle") {
		t.Fatalf("a claimed worker was offered again: %+v", again)
	}
}

func TestAClaimTakesOnlyAWorkerThatFits(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "pool-a", "i-a", "t3.micro")
	if a := claimFor(p, "42-abcd", "c6i.large", "c5.large"); a.Lease != nil || !strings.Contains(a.Miss, "none of type [c6i.large c5.large]") {
		t.Fatalf("answer %+v", a)
	}
	spot := workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketSpot}
	if spot.Fits("t3.micro", false, 0) || !spot.Fits("t3.micro", true, 0) || spot.Fits("t3.micro", true, 50) {
		t.Error("spec matching is wrong about market or root volume")
	}
}

func TestAtTheCapAClaimWaitsThenFailsNamingIt(t *testing.T) {
	p := testPool(t, provisiontest.New())
	p.s.Pool.MaxInstances, p.total = 1, 1
	p.s.Pool.ClaimTimeout = settings.Duration{Duration: 50 * time.Millisecond}
	var waited string
	a := p.claim(context.Background(), workers.ClaimRequest{Job: workers.Job{Key: "42-abcd"},
		Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}, func(w string) { waited = w }, nil)
	if !strings.Contains(waited, "pool.max_instances") || !strings.Contains(a.Error, "pool.max_instances") {
		t.Fatalf("waited %q, answer %+v", waited, a)
	}
	// A worker that gets ready while the claim waits (once it said it waits) is
	// handed to it.
	p.s.Pool.ClaimTimeout = settings.Duration{Duration: 5 * time.Second}
	waiting := make(chan struct{})
	go func() {
		<-waiting
		p.mu.Lock()
		idle(p, "pool-b", "i-b", "t3.micro")
		p.broadcastLocked()
		p.mu.Unlock()
	}()
	a = p.claim(context.Background(), workers.ClaimRequest{Job: workers.Job{Key: "43-abcd"},
		Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}, func(string) { close(waiting) }, nil)
	if a.Lease == nil || a.Lease.InstanceID != "i-b" {
		t.Fatalf("answer %+v", a)
	}
}

// launched puts one of this manager's instances into the fake with tags.
func launched(t *testing.T, f *provisiontest.FakeEC2, tags map[string]string) string {
	tags[workers.TagManagedBy], tags[workers.TagManager] = workers.ManagedByThis, "m1"
	return f.Launched(t, tags)
}

func TestReconcileAdoptsForgetsAndEndsWhatItCannotVerify(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	lost := launched(t, f, map[string]string{workers.TagJobKey: "pool-lost", workers.TagPoolState: workers.PoolBooting})
	unknown := launched(t, f, map[string]string{workers.TagJobKey: "pool-unknown", workers.TagPoolState: workers.PoolIdle})
	jobs := launched(t, f, map[string]string{workers.TagJobKey: "42-abcd"})
	p.book.Workers["pool-lost-0"] = &Record{Key: "pool-lost-0", Batch: "pool-lost", State: workers.PoolBooting, Since: now} // killed before saving the id
	idle(p, "pool-gone", "i-terminated-long-ago", "t3.micro")
	found, err := p.ec2.Find(t.Context(), p.fleet.OwnTags())
	if err != nil {
		t.Fatal(err)
	}
	plan := p.reconcile(found)
	if w := p.book.Workers["pool-lost-0"]; w == nil || w.Lease.InstanceID != lost {
		t.Errorf("the launched worker was not adopted: %+v", w)
	}
	if _, ok := p.book.Workers["pool-gone"]; ok {
		t.Error("a worker EC2 no longer reports is still recorded")
	}
	if len(plan.terminate) != 1 || plan.terminate[0].id != unknown {
		t.Errorf("terminations %+v, want only %s (a pool worker without a record)", plan.terminate, unknown)
	}
	if len(plan.check) != 1 || plan.check[0].Key != "pool-lost-0" || p.total != 3 {
		t.Errorf("checks %+v, total %d (job worker %s counts toward the cap)", plan.check, p.total, jobs)
	}
}

// A booting worker DescribeInstances does not show yet (EC2 is eventually
// consistent; a launch for a claim can end while a poll is under way) is kept for
// describeLag, then taken for gone.
func TestABootingWorkerMissingFromDescribeIsKeptAWhile(t *testing.T) {
	p := testPool(t, provisiontest.New())
	p.book.Workers["pool-new-0"] = &Record{Key: "pool-new-0", Batch: "pool-new", State: workers.PoolBooting, Since: now.Add(-10 * time.Second),
		Lease: workers.Lease{InstanceID: "i-fresh"}}
	p.book.Workers["pool-old-0"] = &Record{Key: "pool-old-0", Batch: "pool-old", State: workers.PoolBooting, Since: now.Add(-2 * describeLag),
		Lease: workers.Lease{InstanceID: "i-long-gone"}}
	plan := p.reconcile(nil)
	if _, ok := p.book.Workers["pool-new-0"]; !ok || len(plan.terminate) != 0 {
		t.Fatalf("a worker launched 10s ago was dropped (%+v)", plan)
	}
	if _, ok := p.book.Workers["pool-old-0"]; ok {
		t.Fatal("a booting worker missing for longer than describeLag is still recorded")
	}
}

func TestAdoptedIdleWorkersAreCheckedBeforeTheyAreOffered(t *testing.T) {
	p := testPool(t, provisiontest.New())
	idle(p, "pool-a", "i-a", "t3.micro")
	if err := p.book.save(); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(p.s, Clients{EC2: provisiontest.New()}, hclog.NewNullLogger(), p.now)
	if err != nil {
		t.Fatal(err)
	}
	if w := restarted.book.Workers["pool-a"]; w.State != workers.PoolBooting {
		t.Fatalf("adopted worker is %s before any check", w.State)
	}
}

func TestFillLaunchesInAsFewCallsAsCapacityAllows(t *testing.T) {
	f := provisiontest.New()
	f.Capacity = 3 // EC2 launches at most 3 per call here
	p := testPool(t, f)
	p.s.Pool.IdleCount = 5
	p.fill(t.Context())
	if f.Calls["RunInstances"] != 2 || len(f.Running()) != 5 {
		t.Fatalf("RunInstances %d times for %d workers, want 2 calls (3, then 2)", f.Calls["RunInstances"], len(f.Running()))
	}
	if in := f.Inputs[0]; *in.MaxCount != 5 || *in.MinCount != 1 {
		t.Errorf("first call asked for %d to %d", *in.MinCount, *in.MaxCount)
	}
	ids := map[string]bool{}
	for _, w := range p.book.Workers {
		if w.Lease.InstanceID == "" || ids[w.Lease.InstanceID] || w.Lease.ClientKey == "" {
			t.Fatalf("record %+v: every worker needs its own instance and keys", w)
		}
		ids[w.Lease.InstanceID] = true
	}
	if p.total != 5 || len(p.book.Workers) != 5 {
		t.Errorf("total %d, records %d", p.total, len(p.book.Workers))
	}
}

func TestReadyWorkersFillIdleThenStopped(t *testing.T) {
	p := testPool(t, provisiontest.New())
	p.s.Pool.IdleCount, p.s.Pool.StoppedCount = 1, 1
	if s := p.readyState(); s != workers.PoolIdle {
		t.Fatalf("first ready worker is %s, want idle", s)
	}
	idle(p, "pool-a-0", "i-a", "t3.micro")
	if s := p.readyState(); s != workers.PoolStopped {
		t.Fatalf("second ready worker is %s, want stopped", s)
	}
	p.book.Workers["pool-a-1"] = &Record{Key: "pool-a-1", State: workers.PoolStopped, Lease: workers.Lease{InstanceID: "i-b", Type: "t3.micro"}}
	if s := p.readyState(); s != workers.PoolIdle {
		t.Fatalf("a worker beyond both counts is %s, want idle (idle_time trims it)", s)
	}
	d, result, _ := p.tryClaim(workers.ClaimRequest{Job: workers.Job{Key: "42-abcd"}, Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}})
	if result != ClaimHit || d.Lease.InstanceID != "i-a" {
		t.Fatalf("an idle worker goes first: %s %+v", result, d)
	}
	d, result, _ = p.tryClaim(workers.ClaimRequest{Job: workers.Job{Key: "43-abcd"}, Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}})
	if result != claimStart || d.stopped.Lease.InstanceID != "i-b" || p.book.Workers["pool-a-1"].State != workers.PoolStarting {
		t.Fatalf("then a stopped one is started: %s %+v", result, d)
	}
}

func TestStartsForClaimsThatArriveTogetherShareOneCall(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	a := launched(t, f, map[string]string{workers.TagPoolState: workers.PoolStopped})
	b := launched(t, f, map[string]string{workers.TagPoolState: workers.PoolStopped})
	if _, err := f.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{a, b}}); err != nil {
		t.Fatal(err)
	}
	go p.starter(t.Context())
	da, db := make(chan error, 1), make(chan error, 1)
	p.starts <- idReq{a, da}
	p.starts <- idReq{b, db}
	if err := errors.Join(<-da, <-db); err != nil {
		t.Fatal(err)
	}
	if f.Calls["StartInstances"] != 1 {
		t.Errorf("StartInstances %d times for two claims that arrived together", f.Calls["StartInstances"])
	}
}

// TestAScheduleMovesThePoolBetweenSizesWithoutTouchingAClaimedWorker switches, with
// an injected clock, from 2 idle to 0 idle and 2 stopped, and back.
func TestAScheduleMovesThePoolBetweenSizesWithoutTouchingAClaimedWorker(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	clock := now
	p.now = func() time.Time { return clock }
	p.s.Pool.IdleCount, p.s.Pool.StoppedCount = 2, 0
	p.s.Pool.Schedule = []settings.PoolSchedule{{Periods: []string{"* 0-6 * * *"}, Timezone: "UTC", IdleCount: 0, StoppedCount: 2}}
	var ids []string
	for i, state := range []string{workers.PoolIdle, workers.PoolIdle, workers.PoolClaimed} {
		id := launched(t, f, map[string]string{workers.TagPoolState: state})
		key := slot("pool-s", i)
		p.book.Workers[key] = &Record{Key: key, State: state, Since: now.Add(-time.Hour), Lease: workers.Lease{InstanceID: id, Type: "t3.micro"}}
		ids = append(ids, id)
	}
	clock = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC) // night: 0 idle, 2 stopped
	p.resize(t.Context())
	n := p.book.count()
	if n[workers.PoolStopped] != 2 || n[workers.PoolIdle] != 0 || n[workers.PoolClaimed] != 1 || f.Calls["StopInstances"] != 1 {
		t.Fatalf("at night: %v, calls %v", n, f.Calls)
	}
	f.AssertRunning(t, ids...)                           // stopped, not terminated; the claimed worker untouched
	clock = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC) // day: 2 idle, 0 stopped
	p.resize(t.Context())
	if n := p.book.count(); n[workers.PoolBooting] != 2 || n[workers.PoolStopped] != 0 || n[workers.PoolClaimed] != 1 || f.Calls["StartInstances"] != 1 {
		t.Fatalf("in the morning: %v, calls %v (the stopped workers are started and checked again)", n, f.Calls)
	}
}

func TestAUsedWorkerGoesOnlyToItsProjectAndFirst(t *testing.T) {
	p := testPool(t, provisiontest.New())
	p.s.Pool.MaxBuilds = 3
	idle(p, "pool-a-0", "i-fresh", "t3.micro")
	idle(p, "pool-a-1", "i-used", "t3.micro")
	used := p.book.Workers["pool-a-1"]
	used.Builds, used.Project, used.Since = 1, "7", now // ready after the fresh one
	req := func(project string) workers.ClaimRequest {
		return workers.ClaimRequest{Job: workers.Job{Key: "j-" + project, ProjectID: project}, Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}
	}
	if w := p.oldest(workers.PoolIdle, req("8")); w == nil || w.Lease.InstanceID != "i-fresh" {
		t.Fatalf("another project got %+v", w)
	}
	if w := p.oldest(workers.PoolIdle, req("7")); w == nil || w.Lease.InstanceID != "i-used" {
		t.Fatalf("the same project got %+v, want the used worker first", w)
	}
	p.s.Pool.ReuseScope = settings.ReuseRunner
	if w := p.oldest(workers.PoolIdle, req("8")); w == nil || w.Lease.InstanceID != "i-used" {
		t.Fatalf("with reuse_scope runner another project got %+v", w)
	}
}

// TestSlotsABatchDidNotFillAreForgotten: a pool killed before it heard RunInstances'
// answer for a batch of 3, of which EC2 launched 1, adopts that one and forgets the
// other two slots at once (their keys have no instance).
func TestSlotsABatchDidNotFillAreForgotten(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	id := launched(t, f, map[string]string{workers.TagJobKey: "pool-b", workers.TagPoolState: workers.PoolBooting})
	for i := range 3 {
		p.book.Workers[slot("pool-b", i)] = &Record{Key: slot("pool-b", i), Batch: "pool-b", Index: i, State: workers.PoolBooting, Since: now}
	}
	found, err := p.ec2.Find(t.Context(), p.fleet.OwnTags())
	if err != nil {
		t.Fatal(err)
	}
	p.reconcile(found)
	if len(p.book.Workers) != 1 || p.book.Workers[slot("pool-b", 0)].Lease.InstanceID != id {
		t.Fatalf("records after the restart: %+v", p.book.Workers)
	}
}

// TestAStopLostWithThePoolIsMadeAgain: a worker recorded as stopped that still runs
// is stopped again, once its first call had time to take effect.
func TestAStopLostWithThePoolIsMadeAgain(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	id := launched(t, f, map[string]string{workers.TagPoolState: workers.PoolStopped})
	w := &Record{Key: "pool-s-0", Batch: "pool-s", State: workers.PoolStopped, Since: now, Lease: workers.Lease{InstanceID: id, Type: "t3.micro"}}
	p.book.Workers[w.Key] = w
	found, _ := p.ec2.Find(t.Context(), p.fleet.OwnTags())
	if plan := p.reconcile(found); len(plan.stop) != 0 {
		t.Fatalf("stopped again while its first call may be in flight: %v", plan.stop)
	}
	w.Since = now.Add(-time.Minute)
	found, _ = p.ec2.Find(t.Context(), p.fleet.OwnTags())
	if plan := p.reconcile(found); len(plan.stop) != 1 || plan.stop[0] != id {
		t.Fatalf("a lost stop is not made again: %v", plan.stop)
	}
}

// TestAStartDuringShutdownDoesNotHang: SIGTERM while a claim waits for a stopped
// worker's start ends Run's context and the starter with it; the claim returns (the
// job launches cold) instead of keeping Run from returning, and the worker it took
// is not left behind.
func TestAStartDuringShutdownDoesNotHang(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	id := launched(t, f, map[string]string{workers.TagPoolState: workers.PoolStopped})
	w := Record{Key: "pool-s-1", State: workers.PoolStarting, Lease: workers.Lease{InstanceID: id}}
	p.book.Workers[w.Key] = &w
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan string, 1)
	go func() { _, result := p.claimStopped(ctx, w); done <- result }()
	cancel() // no starter runs: it stopped with Run's context
	select {
	case result := <-done:
		if result != ClaimCold {
			t.Errorf("result %s, want a cold launch", result)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a claim starting a stopped worker hung after the pool's context ended")
	}
	f.AssertRunning(t)
}

// TestIdleFollowsTheWorkersInUse: with pool.scale_factor the pool launches idle
// workers for the jobs it sees running (cold launches too), up to the limit, and
// /metrics says how many it wants.
func TestIdleFollowsTheWorkersInUse(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	p.s.Pool.IdleCount, p.s.Pool.ScaleFactor, p.s.Pool.ScaleFactorLimit = 0, 1, 2
	for _, job := range []string{"41-cold", "42-cold", "43-cold"} {
		launched(t, f, map[string]string{workers.TagJobKey: job})
	}
	p.tick(t.Context())
	if n := p.book.count()[workers.PoolBooting]; n != 2 {
		t.Errorf("%d workers launched for 3 in use, factor 1, limit 2: want 2", n)
	}
	if got := testutil.ToFloat64(p.m.idleDesired); got != 2 {
		t.Errorf("ec2x_pool_idle_desired %v, want 2", got)
	}
}

// A pre-pull that fails is retried on the next worker, which is offered all the
// same; after prepullGiveUp failures in a row the image is given up and shown.
func TestAnImageWhosePullsKeepFailingIsGivenUp(t *testing.T) {
	p := testPool(t, provisiontest.New())
	p.s.Pool.PrepullImages = []string{"registry.example/ok:1", "registry.example/broken:1"}
	boom := errors.New("manifest unknown")
	p.notePrepull("registry.example/broken:1", boom)
	p.notePrepull("registry.example/broken:1", nil) // a success starts the count again
	for range prepullGiveUp - 1 {
		p.notePrepull("registry.example/broken:1", boom)
	}
	if got := p.prepullImages(); len(got) != 2 {
		t.Fatalf("given up too early: %v", got)
	}
	p.notePrepull("registry.example/broken:1", boom)
	if got := p.prepullImages(); len(got) != 1 || got[0] != "registry.example/ok:1" {
		t.Fatalf("still pulling %v", got)
	}
	if v := testutil.ToFloat64(p.m.prepullFailing.WithLabelValues("registry.example/broken:1")); v != 1 {
		t.Fatalf("ec2x_pool_prepull_failing is %v", v)
	}
}

// /metrics shows what the jobs' workers cost (from the cost record the cleanups
// append to, from the pool's start on) and what the pool's idle workers cost.
func TestCostsOnMetrics(t *testing.T) {
	p := testPool(t, provisiontest.New())
	d := 0.5
	if err := prices.Append(prices.RecordPath(p.s.StateDir), prices.Job{Project: "old/one", Type: "t3.micro", Dollars: &d}); err != nil {
		t.Fatal(err)
	}
	p.costs = newCosts(p) // as at the pool's start: what is recorded before is not counted
	for _, proj := range []string{"group/a", "group/a", "group/b"} {
		if err := prices.Append(prices.RecordPath(p.s.StateDir), prices.Job{Project: proj, Type: "t3.micro", Dollars: &d}); err != nil {
			t.Fatal(err)
		}
	}
	idle(p, "k1", "i-1", "t3.micro")
	clock := now
	p.now = func() time.Time { return clock }
	p.costs.last = now
	clock = now.Add(time.Hour)
	p.countCosts(context.Background())
	if v := testutil.ToFloat64(p.m.jobCost.WithLabelValues("group/a", "t3.micro")); v != 1 {
		t.Errorf("group/a cost %v, want 1", v)
	}
	if v := testutil.ToFloat64(p.m.jobCost.WithLabelValues("old/one", "t3.micro")); v != 0 {
		t.Errorf("a job recorded before the pool started was counted: %v", v)
	}
	if v := testutil.ToFloat64(p.m.idleCost.WithLabelValues("t3.micro")); v != 0.0104 {
		t.Errorf("an hour idle of t3.micro in us-east-1 cost %v, want 0.0104", v)
	}
}
