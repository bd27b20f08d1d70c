package pool

import (
	"context"
	"fmt"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// takeBack answers a job's cleanup that gives its worker back: a worker with builds
// left is wiped (every container, volume and network; images stay) and offered again
// to jobs within pool.reuse_scope; any other is terminated (endFor). A worker whose
// wipe fails is terminated, never offered. Until the wipe is done the records keep it claimed, so a pool that dies
// meanwhile never offers it, and the job's cleanup, getting no answer, terminates it.
func (p *Pool) takeBack(ctx context.Context, req workers.ReleaseRequest) workers.ReleaseAnswer {
	p.mu.Lock()
	var rec *Record
	for _, w := range p.book.Workers {
		if w.State == workers.PoolClaimed && w.ClaimedBy == req.Job.Key && w.Lease.InstanceID == req.InstanceID {
			rec = w
		}
	}
	if rec == nil {
		p.mu.Unlock()
		return workers.ReleaseAnswer{Why: "the pool holds no claim of this job on " + req.InstanceID}
	}
	if rec.Builds+1 >= p.s.Pool.MaxBuilds || req.SpotNotice {
		key := rec.Key
		p.mu.Unlock()
		why := fmt.Sprintf("it served pool.max_builds (%d) jobs", p.s.Pool.MaxBuilds)
		switch {
		case req.SpotNotice:
			why = "EC2 announced its spot reclaim or recommended its rebalance"
		case p.s.Pool.MaxBuilds <= 1:
			why = "its job is done (pool.max_builds is 1)"
		}
		return p.endFor(ctx, key, why)
	}
	w := *rec
	p.mu.Unlock()
	if err := p.wipe(ctx, w); err != nil {
		p.drop(w.Key, "its wipe failed")
		p.terminate(context.WithoutCancel(ctx), w.Lease.InstanceID, ReasonWipe, "its wipe failed: "+err.Error())
		return workers.ReleaseAnswer{Why: "its wipe failed: " + err.Error()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec = p.book.Workers[w.Key]
	if rec == nil {
		return workers.ReleaseAnswer{Why: "it is gone"}
	}
	rec.State, rec.Since, rec.ClaimedBy, rec.Builds = workers.PoolIdle, p.now(), "", rec.Builds+1
	p.saveLocked()
	p.broadcastLocked()
	return workers.ReleaseAnswer{Kept: true, Builds: rec.Builds}
}

// wipe removes what the last job left on the worker and tags it the pool's again.
func (p *Pool) wipe(ctx context.Context, w Record) error {
	eng, err := p.fleet.Reconnect(ctx, w.Lease, p.s.SSH.CleanupConnectTimeout.Duration, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.Wipe(ctx); err != nil {
		return err
	}
	tags := p.fleet.ExpiryTags()
	tags[workers.TagJobKey], tags[workers.TagPoolState] = w.Batch, workers.PoolIdle
	return p.ec2.Tag(ctx, []string{w.Lease.InstanceID}, tags)
}

// fits reports whether a worker may serve the claim: its spec, and for a used
// worker the reuse scope (the same project, unless pool.reuse_scope is "runner").
// A spot claim takes an on-demand worker that an open spot breaker made so: a
// launch for it would be on-demand too. Called with the lock held.
func (p *Pool) fits(w *Record, req workers.ClaimRequest) bool {
	spot := w.Lease.Spot || (req.Spec.Market == settings.MarketSpot && p.breakerMadeOnDemand(w))
	if !req.Spec.Fits(w.Lease.Type, spot, w.RootGiB) {
		return false
	}
	return w.Builds == 0 || p.s.Pool.ReuseScope == settings.ReuseRunner || w.Project == req.Job.ProjectID
}
