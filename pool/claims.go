package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/workers"
)

// ClaimRecord is one answered claim, for `pool status`.
type ClaimRecord struct {
	At       time.Time     `json:"at"`
	Job      string        `json:"job"`
	Result   string        `json:"result"`
	Instance string        `json:"instance,omitempty"`
	Took     time.Duration `json:"took"`
}

// claim answers one job: an idle worker that fits its spec (recorded as claimed, on
// disk, before the answer leaves), a stopped one started for it, one launched for
// it (when it asks for that), a miss (launch cold), or, at max_instances, a wait for
// a worker up to pool.claim_timeout and then an error naming the cap. waiting is
// called whenever the claim waits, with why; gone closes when the job stops waiting.
func (p *Pool) claim(ctx context.Context, req workers.ClaimRequest, waiting func(string), gone <-chan struct{}) workers.ClaimAnswer {
	start := p.now()
	deadline := time.NewTimer(p.s.Pool.ClaimTimeout.Duration)
	defer deadline.Stop()
	waited := false
	for {
		a, result, changed := p.tryClaim(req)
		if result == claimStart { // a stopped worker is started for it: the job waits
			waiting("starting stopped worker " + a.stopped.Lease.InstanceID)
			waited = true
			a, result = p.claimStopped(ctx, *a.stopped)
		}
		if result == claimLaunch {
			waited = true
			a, result = p.launchFor(ctx, req, gone, waiting)
		}
		if result == "" && !waited {
			waiting(fmt.Sprintf("all %d workers allowed by pool.max_instances are busy; waiting up to %s (pool.claim_timeout)",
				p.s.Pool.MaxInstances, p.s.Pool.ClaimTimeout.Duration))
			waited = true
		}
		if result == "" {
			select {
			case <-changed:
				continue
			case <-deadline.C:
				a.ClaimAnswer, result = workers.ClaimAnswer{Error: fmt.Sprintf("no worker within pool.claim_timeout (%s): this manager's %d workers are at pool.max_instances",
					p.s.Pool.ClaimTimeout.Duration, p.s.Pool.MaxInstances)}, ClaimCap
			case <-gone:
				a.ClaimAnswer, result = workers.ClaimAnswer{Error: "the job stopped waiting"}, ClaimError
			case <-ctx.Done():
				a.ClaimAnswer, result = workers.ClaimAnswer{Error: "the pool is stopping"}, ClaimError
			}
		}
		p.record(req.Job.Key, result, a.ClaimAnswer, start)
		if result == ClaimHit || result == ClaimStarted || result == ClaimLaunched {
			go p.tagClaim(context.WithoutCancel(ctx), a.Lease.InstanceID, req.Job)
			p.kick()
		}
		return a.ClaimAnswer
	}
}

// claimIdle takes an idle worker that fits, if there is one. The claim is marked
// under the lock, which is then let go so that the claims arriving with it can mark
// theirs, and the first of them to save takes them all to disk at once. Never is a
// worker handed out that a restart would offer again: the answer waits for the save.
func (p *Pool) claimIdle(req workers.ClaimRequest) (decision, bool) {
	p.mu.Lock()
	best := p.oldest(workers.PoolIdle, req)
	if best == nil {
		p.mu.Unlock()
		return decision{}, false
	}
	ready, project := best.Since, best.Project
	best.State, best.Since, best.ClaimedBy, best.Project = workers.PoolClaimed, p.now(), req.Job.Key, req.Job.ProjectID
	lease, gen := best.Lease, p.book.touch()
	p.mu.Unlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.book.durable(gen); err != nil {
		if best.State == workers.PoolClaimed && best.ClaimedBy == req.Job.Key {
			best.State, best.Since, best.ClaimedBy, best.Project = workers.PoolIdle, ready, "", project
		}
		return decision{ClaimAnswer: workers.ClaimAnswer{Error: err.Error()}, result: ClaimError}, true
	}
	lease.Source = workers.SourcePool
	return decision{ClaimAnswer: workers.ClaimAnswer{Lease: &lease, ReadySince: ready}, result: ClaimHit}, true
}

// tryClaim's results for a claim that takes a stopped worker, and for one that has
// the pool launch a worker.
const (
	claimStart  = "start"
	claimLaunch = "launch"
)

// decision is tryClaim's answer, with the stopped worker to start when it took one.
type decision struct {
	workers.ClaimAnswer
	stopped *Record
	result  string
}

// tryClaim decides under the lock: an idle worker that fits (recorded as claimed
// on disk before the answer leaves), else a stopped one (recorded as starting), else
// a launch for it (counted as pending against the cap) when it asks, else a miss,
// or at the cap an empty result: wait for changed.
func (p *Pool) tryClaim(req workers.ClaimRequest) (decision, string, <-chan struct{}) {
	if d, ok := p.claimIdle(req); ok {
		return d, d.result, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if best := p.oldest(workers.PoolStopped, req); best != nil {
		best.State, best.ClaimedBy, best.Project = workers.PoolStarting, req.Job.Key, req.Job.ProjectID
		if err := p.book.save(); err != nil {
			best.State, best.ClaimedBy = workers.PoolStopped, ""
			return decision{ClaimAnswer: workers.ClaimAnswer{Error: err.Error()}}, ClaimError, nil
		}
		w := *best
		return decision{stopped: &w}, claimStart, nil
	}
	if limit := p.s.Pool.MaxInstances; limit > 0 && p.total+p.pending >= limit {
		return decision{}, "", p.changed
	}
	if req.Launch {
		p.pending++
		return decision{}, claimLaunch, nil
	}
	n := p.book.count()
	return decision{ClaimAnswer: workers.ClaimAnswer{Miss: fmt.Sprintf("%d idle, %d stopped, %d booting, none of type %v, market %s", n[workers.PoolIdle],
		n[workers.PoolStopped], n[workers.PoolBooting], req.Spec.Types, req.Spec.Market)}}, ClaimCold, nil
}

// oldest is the worker in state that may serve req, a used one first (its Docker
// cache is the point of reuse), else the one in that state longest; or nil.
func (p *Pool) oldest(state string, req workers.ClaimRequest) *Record {
	var best *Record
	for _, w := range p.book.Workers {
		if w.State != state || !p.fits(w, req) {
			continue
		}
		if preferred(w, best) {
			best = w
		}
	}
	return best
}

// preferred reports whether w serves a claim before best: a used worker before a
// fresh one, then the one waiting longest.
func preferred(w, best *Record) bool {
	switch {
	case best == nil:
		return true
	case (w.Builds > 0) != (best.Builds > 0):
		return w.Builds > 0
	}
	return w.Since.Before(best.Since)
}

// tagClaim gives a claimed worker the job's tags (its key, for cleanup and the
// reaper) after the answer left: no EC2 call is on the job's path. A pool that dies
// first retags it from its records on the next start.
func (p *Pool) tagClaim(ctx context.Context, id string, job workers.Job) {
	if err := p.ec2.Tag(ctx, []string{id}, p.fleet.ClaimTags(job)); err != nil {
		p.log.Warn("Tagging a claimed worker", "instance_id", id, "error", err)
	}
}

// record counts a claim and keeps it for `pool status`.
func (p *Pool) record(job, result string, a workers.ClaimAnswer, start time.Time) {
	took := p.now().Sub(start)
	p.m.claims.WithLabelValues(result).Inc()
	p.m.claimTime.Observe(took.Seconds())
	r := ClaimRecord{At: start, Job: job, Result: result, Took: took}
	if a.Lease != nil {
		r.Instance = a.Lease.InstanceID
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent = append(p.recent, r)
	if len(p.recent) > 20 {
		p.recent = p.recent[len(p.recent)-20:]
	}
}
