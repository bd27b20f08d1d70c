package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// Pool keeps workers ready and serves claims. One mutex guards the records; no EC2 or
// SSH call is made while holding it.
type Pool struct {
	s     settings.Settings
	fleet *workers.Fleet
	// ec2 makes the pool's own EC2 calls on its workers (poll, tag, stop, start,
	// terminate), paced like the fleet's launches.
	ec2 *provision.Provisioner
	log hclog.Logger
	now func() time.Time
	m   *metrics

	mu       sync.Mutex
	book     *book
	total    int                  // this manager's workers at the last poll, plus launches since
	inUse    atomic.Int64         // this manager's workers serving jobs (pooled or cold) at the last poll
	checking map[string]bool      // readiness checks in flight, by worker key
	changed  chan struct{}        // closed and replaced on every change claims may wait for
	recent   []ClaimRecord        // the latest claims, for `pool status`
	seen     map[string]time.Time // when the pool first saw a booting worker running
	refill   chan struct{}
	batchMax atomic.Int64 // workers per RunInstances call, halved while their user data does not fit
	starts   chan idReq
	running  map[string]bool   // starting workers EC2 reports running again, by key
	launches chan launchReq    // claims that found no worker, for the launcher
	ends     chan idReq        // workers of finished jobs, for the ender
	pending  int               // workers claims are waiting to have launched (counted against max_instances)
	failed   map[string]string // why a worker launched for a claim is gone, by key, until the claim reads it
	// breakers are the spot breakers open at the last poll (publishBreakers).
	breakers []workers.Breaker
	// lastPoll is when a poll last finished: learned every worker's state and acted on it (Status).
	lastPoll time.Time

	ecr   func(ctx context.Context, region string) (dockerauth.ECRAPI, error)
	spot  prices.SpotAPI
	costs *costs
	// prepullFailures counts each pool.prepull_images image's failed pulls in a row;
	// at prepullGiveUp the pool stops pulling it (ready.go).
	prepullMu       sync.Mutex
	prepullFailures map[string]int
}

// Clients are the AWS clients the pool calls.
type Clients struct {
	EC2 provision.EC2API // paced and counted by the pool
	SSM provision.SSMAPI
	// ECR returns a client for a registry's region (registry.ecr = "manager").
	ECR func(ctx context.Context, region string) (dockerauth.ECRAPI, error)
	// Spot reads spot prices, for what idle spot workers cost.
	Spot prices.SpotAPI
}

// New opens the pool's records under state_dir. The pool paces and counts every EC2
// call it makes.
func New(s settings.Settings, c Clients, log hclog.Logger, now func() time.Time) (*Pool, error) {
	b, err := openBook(s.StateDir)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	paced := newPaced(c.EC2, m, s.Pool.LaunchesPerSecond)
	fleet := workers.New(s, workers.Clients{EC2: paced, SSM: c.SSM}, log, now)
	p := &Pool{s: s, fleet: fleet, ec2: provision.New(paced, log), ecr: c.ECR, spot: c.Spot, prepullFailures: map[string]int{}, log: log, now: now, m: m, book: b, checking: map[string]bool{},
		changed: make(chan struct{}), seen: map[string]time.Time{}, refill: make(chan struct{}, 1),
		starts: make(chan idReq, 64), running: map[string]bool{}, launches: make(chan launchReq, 1024), ends: make(chan idReq, 1024), failed: map[string]string{}}
	p.batchMax.Store(16)
	p.costs = newCosts(p)
	for _, w := range b.Workers {
		switch w.State {
		case workers.PoolIdle: // adopted: checked over SSH again before it is offered
			w.State = workers.PoolBooting
		case workers.PoolStarting: // a claim the earlier run died answering: never offered again
			w.State = workers.PoolClaimed
		case workers.PoolEnding:
			// The earlier run died before EC2 confirmed: the job's cleanup got no
			// answer and terminates it itself; the record goes when EC2 shows it gone.
			w.State = workers.PoolClaimed
		}
		w.ReservedFor = nil // its claim's connection ended with the earlier run: the worker joins the pool
	}
	return p, nil
}

// Run serves claims on the pool's socket and keeps the pool filled until ctx ends,
// then stops taking claims and leaves its idle workers for the next start (or
// terminates them with pool.terminate_on_shutdown).
func (p *Pool) Run(ctx context.Context) error {
	l, err := p.listen()
	if err != nil {
		return err
	}
	stopMetrics, err := p.serveMetrics()
	if err != nil {
		l.Close()
		return err
	}
	defer stopMetrics()
	var served sync.WaitGroup
	served.Add(1)
	go func() { defer served.Done(); p.serve(ctx, l) }()
	go p.starter(ctx)
	go p.launcher(ctx)
	go p.ender(ctx)
	go p.heartbeat(ctx)
	go p.watchSpot(ctx)
	p.log.Info("Pool serving claims", "socket", p.s.PoolSocket(), "idle_count", p.s.Pool.IdleCount, "max_instances", p.s.Pool.MaxInstances)
	for {
		p.tick(ctx)
		select {
		case <-ctx.Done():
			l.Close()
			served.Wait()
			return p.shutdown(ctx)
		case <-time.After(p.pollInterval()):
		case <-p.refill:
		}
	}
}

// tick learns every worker's state from one DescribeInstances, then acts on it:
// forget what is gone, check what booted, end what nobody can verify, trim idle
// workers past idle_time, and launch what is missing.
func (p *Pool) tick(ctx context.Context) {
	found, err := p.ec2.Find(ctx, p.fleet.OwnTags())
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("Polling the pool's workers", "error", err)
		}
		return
	}
	plan := p.reconcile(found)
	for _, t := range plan.terminate {
		p.terminate(ctx, t.id, t.reason, t.why)
	}
	p.retag(ctx, plan)
	p.stop(ctx, plan.stop)
	for _, w := range plan.check {
		go p.check(ctx, w)
	}
	p.resize(ctx)
	p.fill(ctx)
	p.countCosts(ctx)
	p.publishBreakers()
	p.publish()
	p.mu.Lock()
	p.lastPoll = p.now()
	p.mu.Unlock()
}

// terminate ends a worker the pool no longer wants, and counts why. Its record is
// gone already, so the call outlives a shutdown that begins meanwhile (a SIGTERM
// must not leave a worker the pool has forgotten running until its expiry).
func (p *Pool) terminate(ctx context.Context, id, reason, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), terminateTimeout)
	defer cancel()
	if err := p.ec2.Terminate(ctx, id); err != nil {
		p.log.Warn("Terminating a pool worker", "instance_id", id, "error", err)
		return
	}
	p.log.Info("Terminated a pool worker", "instance_id", id, "reason", reason, "why", why)
	p.m.terminated.WithLabelValues(reason).Inc()
}

// terminateTimeout bounds one termination the pool decided on (retries included).
const terminateTimeout = 30 * time.Second

// shutdown saves the records; with terminate_on_shutdown it ends every worker the
// pool holds first, within a minute of Run's (done) context.
func (p *Pool) shutdown(runCtx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), time.Minute)
	defer cancel()
	if p.s.Pool.TerminateOnShutdown {
		p.mu.Lock()
		var ids []string
		for key, w := range p.book.Workers {
			if w.State != workers.PoolClaimed && w.State != workers.PoolStarting && w.Lease.InstanceID != "" {
				ids = append(ids, w.Lease.InstanceID)
				delete(p.book.Workers, key)
			}
		}
		p.saveLocked()
		p.mu.Unlock()
		for _, id := range ids {
			p.terminate(ctx, id, ReasonStop, "the pool stopped (pool.terminate_on_shutdown)")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Info("Pool stopped", "workers_left", p.book.count())
	return p.book.save()
}

// saveLocked saves the records; a failure is logged (claims check it themselves).
func (p *Pool) saveLocked() {
	if err := p.book.save(); err != nil {
		p.log.Error("Saving the pool's records", "error", err)
	}
}

// broadcastLocked wakes every claim waiting for a change.
func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// publish sets the workers gauge from the records.
func (p *Pool) publish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for state, n := range p.book.count() {
		p.m.workers.WithLabelValues(state).Set(float64(n))
	}
	for _, arch := range []string{p.s.Instance.Arch(), p.s.Instance.OtherArch()} {
		n, _ := p.countArch(arch)
		p.m.idleByArch.WithLabelValues(arch, "actual").Set(float64(n[workers.PoolIdle]))
	}
}

// pollInterval is pool.poll_interval, or a second while a stopped worker starts, or
// a worker boots, for a waiting claim.
func (p *Pool) pollInterval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.book.count()[workers.PoolStarting] > 0 || p.reservedLocked() > 0 {
		return min(time.Second, p.s.Pool.PollInterval.Duration)
	}
	return p.s.Pool.PollInterval.Duration
}

// kick asks the loop for an early tick (after a claim, to refill at once).
func (p *Pool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

func newKey() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "pool-" + hex.EncodeToString(b)
}

// sortBySince orders workers by when they entered their state, oldest first.
func sortBySince(ws []*Record) {
	sort.Slice(ws, func(i, j int) bool { return ws[i].Since.Before(ws[j].Since) })
}
