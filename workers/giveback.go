package workers

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// GiveBack gives a pooled job's worker back to the pool, which keeps it for another
// job (pool.max_builds above 1) or terminates it, batched with the releases that
// come with it (no DescribeInstances: the pool launched it, so there is no
// duplicate to look for), and reports whether the pool took it. Any doubt (no
// pool, no answer, a refusal) is false: the caller then terminates the worker
// itself. noticed says EC2 announced the spot worker's reclaim or rebalance.
func (f *Fleet) GiveBack(ctx context.Context, job Job, l Lease, noticed bool) bool {
	if l.Source != SourcePool {
		return false
	}
	within := f.s.SSH.CleanupConnectTimeout.Duration + time.Minute
	a, err := Ask(ctx, f.s.PoolSocket(), Request{Release: &ReleaseRequest{Job: job, InstanceID: l.InstanceID, SpotNotice: noticed}}, within, within, func(string) {})
	if err == nil && a.Release == nil {
		err = fmt.Errorf("%w: %s", ErrPoolRefused, a.Error)
	}
	switch {
	case err != nil:
		f.log.Info("Terminating the worker: the pool did not take it back", "reason", err.Error())
		return false
	case a.Release.Ended:
		f.log.Info("The pool terminated worker "+l.InstanceID+": "+a.Release.Why, "instance_id", l.InstanceID)
		return true
	case !a.Release.Kept:
		f.log.Info("Terminating the worker: " + a.Release.Why)
		return false
	}
	f.log.Info("Returned worker "+l.InstanceID+" to the pool, wiped ("+strconv.Itoa(a.Release.Builds)+" of "+
		strconv.Itoa(f.s.Pool.MaxBuilds)+" builds)", "instance_id", l.InstanceID)
	return true
}
