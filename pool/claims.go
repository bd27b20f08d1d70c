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
// disk, before the answer leaves), a miss (launch cold), or, at max_instances, a
// wait for a worker up to pool.claim_timeout and then an error naming the cap.
// waiting is called once if the claim waits.
func (p *Pool) claim(ctx context.Context, req workers.ClaimRequest, waiting func(string)) workers.ClaimAnswer {
	start := p.now()
	deadline := time.NewTimer(p.s.Pool.ClaimTimeout.Duration)
	defer deadline.Stop()
	waited := false
	for {
		a, result, changed := p.tryClaim(req)
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
				a, result = workers.ClaimAnswer{Error: fmt.Sprintf("no worker within pool.claim_timeout (%s): this manager's %d workers are at pool.max_instances",
					p.s.Pool.ClaimTimeout.Duration, p.s.Pool.MaxInstances)}, ClaimCap
			case <-ctx.Done():
				a, result = workers.ClaimAnswer{Error: "the pool is stopping"}, ClaimError
			}
		}
		p.record(req.Job.Key, result, a, start)
		if result == ClaimHit {
			go p.tagClaim(context.WithoutCancel(ctx), a.Lease.InstanceID, req.Job)
			p.kick()
		}
		return a
	}
}

// tryClaim decides under the lock; an empty result means wait for changed.
func (p *Pool) tryClaim(req workers.ClaimRequest) (workers.ClaimAnswer, string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *Worker
	for _, w := range p.book.Workers {
		if w.State == workers.PoolIdle && req.Spec.Fits(w.Type, w.Spot, w.RootGiB) && (best == nil || w.Since.Before(best.Since)) {
			best = w
		}
	}
	if best != nil {
		ready := best.Since
		best.State, best.Since, best.ClaimedBy = workers.PoolClaimed, p.now(), req.Job.Key
		if err := p.book.save(); err != nil { // never hand out what a restart would offer again
			best.State, best.Since, best.ClaimedBy = workers.PoolIdle, ready, ""
			return workers.ClaimAnswer{Error: err.Error()}, ClaimError, nil
		}
		lease := best.Lease
		lease.Source = workers.SourcePool
		return workers.ClaimAnswer{Lease: &lease, ReadySince: ready}, ClaimHit, nil
	}
	if limit := p.s.Pool.MaxInstances; limit > 0 && p.total >= limit {
		return workers.ClaimAnswer{}, "", p.changed
	}
	n := p.book.count()
	return workers.ClaimAnswer{Miss: fmt.Sprintf("%d idle, %d booting, none of type %v, market %s", n[workers.PoolIdle],
		n[workers.PoolBooting], req.Spec.Types, req.Spec.Market)}, ClaimCold, nil
}

// tagClaim gives a claimed worker the job's tags (its key, for cleanup and the
// reaper) after the answer left: no EC2 call is on the job's path. A pool that dies
// first retags it from its records on the next start.
func (p *Pool) tagClaim(ctx context.Context, id string, job workers.Job) {
	if err := p.fleet.Tag(ctx, []string{id}, p.fleet.ClaimTags(job)); err != nil {
		p.log.Warn("Tagging claimed worker "+id, "error", err)
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
