package pool

import (
	"context"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
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

type ending struct{ id, reason, why string }

type tickPlan struct {
	terminate []ending
	check     []Record
	claimed   []Record // whose tags lag behind the records (a claim the pool died tagging)
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
func (p *Pool) plan(plan *tickPlan, w *Record, in provision.Instance, now time.Time) {
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
func (p *Pool) forget(w *Record) {
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
		if err := p.ec2.Tag(ctx, plan.renew, p.fleet.ExpiryTags()); err != nil {
			p.log.Warn("Renewing the expiry of pool workers", "error", err)
		}
	}
}
