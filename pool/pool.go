package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// neverLaunched is how long a record without an instance id waits for EC2 to show
// an instance with its key (a pool killed between RunInstances and saving the id)
// before the pool forgets it.
const neverLaunched = 5 * time.Minute

// describeLag is how long a booting worker may be missing from DescribeInstances
// before the pool takes it for gone: EC2's DescribeInstances is eventually
// consistent (a new instance may be missing from it for seconds), and a launch
// for a claim can complete while a poll's call is under way, after EC2 took its
// snapshot.
const describeLag = time.Minute

// restopAfter is how long a worker recorded as stopped may still run before the pool
// stops it again (its first StopInstances was lost with a pool that died).
const restopAfter = 30 * time.Second

// Pool keeps workers ready and serves claims. One mutex guards the records; no EC2 or
// SSH call is made while holding it.
type Pool struct {
	s     settings.Settings
	fleet *workers.Fleet
	log   hclog.Logger
	now   func() time.Time
	m     *metrics

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
	resumes  chan resumeReq
	running  map[string]bool   // starting workers EC2 reports running again, by key
	launches chan launchReq    // claims that found no worker, for the launcher
	ends     chan endReq       // workers of finished jobs, for the ender
	pending  int               // workers claims are waiting to have launched (counted against max_instances)
	failed   map[string]string // why a worker launched for a claim is gone, by key, until the claim reads it

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
	fleet := workers.New(s, workers.Clients{EC2: newPaced(c.EC2, m, s.Pool.LaunchesPerSecond), SSM: c.SSM}, log, now)
	p := &Pool{s: s, fleet: fleet, ecr: c.ECR, spot: c.Spot, prepullFailures: map[string]int{}, log: log, now: now, m: m, book: b, checking: map[string]bool{},
		changed: make(chan struct{}), seen: map[string]time.Time{}, refill: make(chan struct{}, 1),
		resumes: make(chan resumeReq, 64), running: map[string]bool{}, launches: make(chan launchReq, 1024), ends: make(chan endReq, 1024), failed: map[string]string{}}
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
	go p.resumer(ctx)
	go p.launcher(ctx)
	go p.ender(ctx)
	go p.heartbeat(ctx)
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
	found, err := p.fleet.Own(ctx)
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
	p.publish()
}

type ending struct{ id, reason, why string }

type tickPlan struct {
	terminate []ending
	check     []Worker
	claimed   []Worker // whose tags lag behind the records (a claim the pool died tagging)
	renew     []string // idle or booting workers whose expiry is due for renewal
	stop      []string // workers recorded as stopped that EC2 still reports running
}

// reconcile compares the records with what EC2 reported, under the lock.
func (p *Pool) reconcile(found []provision.Instance) tickPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var plan tickPlan
	byID, bySlot, batches := map[string]provision.Instance{}, map[string]provision.Instance{}, map[string]bool{}
	for _, in := range found {
		byID[in.ID], bySlot[slot(in.Tags[workers.TagJobKey], in.LaunchIndex)] = in, in
		batches[in.Tags[workers.TagJobKey]] = true
	}
	known := map[string]bool{}
	now := p.now()
	for key, w := range p.book.Workers {
		if w.Lease.InstanceID == "" {
			in, ok := bySlot[slot(w.Batch, w.Index)]
			switch {
			case ok && in.Tags[workers.TagPoolState] != "":
				w.Lease.InstanceID = in.ID // launched just before an earlier run died
			case batches[w.Batch] || now.Sub(w.Since) > neverLaunched:
				// Its batch's call is done (EC2 shows the batch) and launched fewer, or
				// nothing showed up in time: these keys have no instance.
				delete(p.book.Workers, key)
				continue
			default:
				continue
			}
		}
		in, ok := byID[w.Lease.InstanceID]
		known[w.Lease.InstanceID] = true
		switch {
		case !ok && w.State == workers.PoolBooting && now.Sub(w.Since) < describeLag:
			continue
		case !ok:
			p.forget(w)
			continue
		}
		p.plan(&plan, w, in, now)
	}
	for _, in := range found {
		if s := in.Tags[workers.TagPoolState]; (s == workers.PoolBooting || s == workers.PoolIdle) && !known[in.ID] {
			plan.terminate = append(plan.terminate, ending{in.ID, ReasonUnknown, "the pool has no record of it (no keys to verify it with)"})
		}
	}
	p.total = len(found)
	p.inUse.Store(int64(inUse(found)))
	p.saveLocked()
	return plan
}

// inUse counts the instances that serve a job: every one of this manager's that the
// pool does not hold as booting, idle, stopped or starting (claimed pool workers and
// cold launches alike). It is what pool.scale_factor multiplies.
func inUse(found []provision.Instance) int {
	n := 0
	for _, in := range found {
		switch in.Tags[workers.TagPoolState] {
		case workers.PoolBooting, workers.PoolIdle, workers.PoolStopped, workers.PoolStarting:
		default:
			n++
		}
	}
	return n
}

// plan decides what one recorded worker that EC2 still reports needs.
func (p *Pool) plan(plan *tickPlan, w *Worker, in provision.Instance, now time.Time) {
	w.Type, w.Spot = in.Type, in.Spot
	w.Lease.Type, w.Lease.Zone, w.Lease.Spot = in.Type, in.Zone, in.Spot
	switch w.State {
	case workers.PoolBooting:
		if in.State != "running" || p.checking[w.Key] {
			return
		}
		if _, ok := p.seen[w.Key]; !ok {
			p.seen[w.Key] = now
			p.m.phases.WithLabelValues(PhaseRunning).Observe(now.Sub(w.Since).Seconds())
		}
		addr, err := p.fleet.Address(in)
		if err != nil {
			plan.terminate = append(plan.terminate, ending{in.ID, ReasonBoot, err.Error()})
			return
		}
		w.Lease.Address = addr
		p.checking[w.Key] = true
		plan.check = append(plan.check, *w)
	case workers.PoolClaimed:
		if in.Tags[workers.TagPoolState] != workers.PoolClaimed || in.Tags[workers.TagJobKey] != w.ClaimedBy {
			plan.claimed = append(plan.claimed, *w)
		}
	case workers.PoolStopped:
		// Still running well after it was recorded stopped: the StopInstances call was
		// lost (the pool died before making it). A fresh record's call is in flight.
		if (in.State == "running" || in.State == "pending") && now.Sub(w.Since) > restopAfter {
			plan.stop = append(plan.stop, in.ID)
		}
	case workers.PoolStarting:
		if addr, err := p.fleet.Address(in); err == nil && in.State == "running" && !p.running[w.Key] {
			w.Lease.Address, p.running[w.Key] = addr, true // it may come back on another address
			p.broadcastLocked()
		}
	}
	if w.State != workers.PoolClaimed && p.fleet.Expiry(in).Sub(now) < p.s.Instance.MaxLifetime.Duration/2 {
		plan.renew = append(plan.renew, in.ID)
	}
}

// forget drops the record of a worker EC2 no longer reports as alive.
func (p *Pool) forget(w *Worker) {
	delete(p.book.Workers, w.Key)
	delete(p.seen, w.Key)
	delete(p.running, w.Key)
	reason := ReasonGone
	if w.ReservedFor != nil {
		p.failed[w.Key] = "EC2 reports it gone while it booted"
	}
	if w.State == workers.PoolClaimed {
		reason = ReasonJobDone
	} else {
		p.log.Warn("A pool worker is gone", "instance_id", w.Lease.InstanceID, "state", w.State)
	}
	p.m.terminated.WithLabelValues(reason).Inc()
	p.broadcastLocked()
}

// retag brings lagging claim tags in line with the records and renews the expiry of
// the workers the pool holds, each with one CreateTags call per kind.
func (p *Pool) retag(ctx context.Context, plan tickPlan) {
	for _, w := range plan.claimed {
		p.tagClaim(ctx, w.Lease.InstanceID, workers.Job{Key: w.ClaimedBy})
	}
	if len(plan.renew) > 0 {
		if err := p.fleet.Tag(ctx, plan.renew, p.fleet.ExpiryTags()); err != nil {
			p.log.Warn("Renewing the expiry of pool workers", "error", err)
		}
	}
}

// fill launches the workers the pool is missing, within max_instances, in as few
// RunInstances calls as their user data allows.
func (p *Pool) fill(ctx context.Context) {
	idleWant, stoppedWant, _ := p.size()
	p.mu.Lock()
	n := p.book.count()
	missing := idleWant + stoppedWant - n[workers.PoolIdle] - (n[workers.PoolBooting] - p.reservedLocked()) - n[workers.PoolStopped]
	if limit := p.s.Pool.MaxInstances; limit > 0 {
		missing = min(missing, limit-p.total-p.pending)
	}
	p.mu.Unlock()
	for missing > 0 && ctx.Err() == nil {
		size := min(missing, int(p.batchMax.Load()))
		_, got, err := p.launchBatch(ctx, p.s.Instance, size, nil)
		switch {
		case errors.Is(err, cloudinit.ErrBatchTooBig) && size > 1:
			p.batchMax.Store(int64(size / 2))
			continue
		case err != nil:
			if ctx.Err() == nil {
				p.log.Warn("Launching pool workers", "error", err)
			}
			return
		}
		missing -= got
	}
}

// launchBatch starts up to n pool workers of the instance settings in with one
// RunInstances call and returns the batch's key and how many EC2 launched. With
// jobs (one per worker), worker i is reserved for jobs[i]: its check hands it to
// that job's claim instead of offering it. Their records (with their keys) are
// saved before the launch and again with their ids, so no restart loses track of
// them.
func (p *Pool) launchBatch(ctx context.Context, in settings.Instance, n int, jobs []workers.Job) (string, int, error) {
	batch, start := newKey(), p.now()
	saved := func(ls []workers.Lease) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, l := range ls {
			key := slot(batch, i)
			if p.book.Workers[key] == nil {
				w := &Worker{Key: key, Batch: batch, Index: i, State: workers.PoolBooting, Since: start, RootGiB: in.RootVolume.SizeGiB}
				if jobs != nil {
					w.ReservedFor, w.Project = &jobs[i], jobs[i].ProjectID
				}
				p.book.Workers[key] = w
			}
			p.book.Workers[key].Lease = l
		}
		return p.book.save()
	}
	_, err := p.fleet.StartPoolBatch(ctx, in, batch, n, saved)
	p.mu.Lock()
	defer p.mu.Unlock()
	launched := 0
	for i := range n {
		key := slot(batch, i)
		w := p.book.Workers[key]
		switch {
		case w == nil:
		case w.Lease.InstanceID != "":
			launched++
		case err == nil || ctx.Err() == nil:
			// EC2 launched fewer than asked, or the call failed: these keys have no
			// instance. (A launch cut short by shutdown keeps them: the next start
			// adopts an instance that did start, or forgets them after a while.)
			delete(p.book.Workers, key)
		}
	}
	p.total += launched
	if launched > 0 {
		p.m.phases.WithLabelValues(PhaseRun).Observe(p.now().Sub(start).Seconds())
		p.log.Info("Launched pool workers with one RunInstances call", "count", launched, "batch", batch, "for_jobs", len(jobs))
	}
	p.saveLocked()
	return batch, launched, err
}

// slot names a worker by its batch and launch index.
func slot(batch string, index int) string { return batch + "-" + strconv.Itoa(index) }

// resize brings the pool to its current size (the schedule's, or the [pool]
// section's) without touching a claimed worker. Idle workers beyond the idle count
// are stopped while the stopped pool is short, and the rest, those ready longest
// first, end once they waited idle_time. Stopped workers beyond the stopped count
// are started while the idle pool is short (they are checked again, then offered),
// and the rest are terminated.
func (p *Pool) resize(ctx context.Context) {
	idleWant, stoppedWant, idleTime := p.size()
	p.mu.Lock()
	idle, stopped := p.inState(workers.PoolIdle), p.inState(workers.PoolStopped)
	var ends []ending
	var stops, starts []string
	now := p.now()
	for _, w := range idle[:max(len(idle)-idleWant, 0)] {
		switch {
		case len(stopped)+len(stops) < stoppedWant:
			w.State, w.Since = workers.PoolStopped, now
			stops = append(stops, w.Lease.InstanceID)
		case now.Sub(w.Since) >= idleTime:
			ends = append(ends, ending{w.Lease.InstanceID, ReasonIdle, "idle longer than pool.idle_time"})
			delete(p.book.Workers, w.Key)
		}
	}
	for _, w := range stopped[:max(len(stopped)-stoppedWant, 0)] {
		if len(idle)+len(starts) < idleWant {
			w.State, w.Since = workers.PoolBooting, now
			starts = append(starts, w.Lease.InstanceID)
			continue
		}
		ends = append(ends, ending{w.Lease.InstanceID, ReasonIdle, "more stopped workers than the pool wants now"})
		delete(p.book.Workers, w.Key)
	}
	p.saveLocked()
	p.mu.Unlock()
	p.stop(ctx, stops)
	if err := p.fleet.Resume(ctx, starts); err != nil {
		p.log.Warn("Starting stopped pool workers", "error", err)
	}
	for _, e := range ends {
		p.terminate(ctx, e.id, e.reason, e.why)
	}
}

// inState lists the workers in state, those in it longest first. Called with the
// lock held.
func (p *Pool) inState(state string) []*Worker {
	var out []*Worker
	for _, w := range p.book.Workers {
		if w.State == state {
			out = append(out, w)
		}
	}
	sortBySince(out)
	return out
}

// size is how many idle and stopped workers the pool wants now, and how long an
// idle one beyond them may wait: the schedule's sizes, the idle count raised by
// pool.scale_factor for the workers in use.
func (p *Pool) size() (idle, stopped int, idleTime time.Duration) {
	now := p.now()
	_, stopped, idleTime = p.s.Pool.PoolSize(now)
	idle = p.s.Pool.IdleWanted(now, int(p.inUse.Load()))
	p.m.idleDesired.Set(float64(idle))
	return idle, stopped, idleTime
}

// terminate ends a worker the pool no longer wants, and counts why.
func (p *Pool) terminate(ctx context.Context, id, reason, why string) {
	if err := p.fleet.Terminate(ctx, id); err != nil {
		p.log.Warn("Terminating a pool worker", "instance_id", id, "error", err)
		return
	}
	p.log.Info("Terminated a pool worker", "instance_id", id, "reason", reason, "why", why)
	p.m.terminated.WithLabelValues(reason).Inc()
}

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
func sortBySince(ws []*Worker) {
	sort.Slice(ws, func(i, j int) bool { return ws[i].Since.Before(ws[j].Since) })
}
