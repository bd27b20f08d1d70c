package workers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// poolAnswerWithin is how long a job waits for a pool's first answer before it
// launches cold. A dead pool costs nothing (its socket refuses at once, or is gone);
// this bounds the wait on a hung one. A second was too short for a manager under a
// burst: with 200 prepares starting at once on 2 cores, 11 claims waited longer
// for the pool's first line and launched cold (make bench, the pooled burst).
const poolAnswerWithin = 5 * time.Second

// Get gives the job a worker. When a pool runs: an idle one that fits the job's
// spec (no EC2 call), else a stopped one the pool starts (one StartInstances), else
// one the pool launches for the job, batched with the launches of the jobs that
// ask with it and paced within EC2's limits. Without a pool, or when the pool
// cannot serve it, a launch of its own. The job log says which, and why. saved is
// called as in Launch.
func (f *Fleet) Get(ctx context.Context, job Job, in settings.Instance, saved func(Lease) error) (Lease, error) {
	start := time.Now()
	socket := f.s.PoolSocket()
	a, err := Claim(ctx, socket, ClaimRequest{Job: job, Spec: SpecOf(in), Launch: true}, poolAnswerWithin, f.claimWait(), f.waiting)
	switch {
	case errors.Is(err, errNoPool):
		f.noPool(socket, err)
	case err != nil:
		return Lease{}, err
	case a.Error != "":
		return Lease{}, fmt.Errorf("%w: %s", ErrPoolRefused, a.Error)
	case a.Lease != nil && a.Launched != "":
		l := *a.Lease
		f.log.Info("Using worker "+l.InstanceID+", launched by the pool for this job "+a.Launched+"; ready after "+
			time.Since(start).Round(100*time.Millisecond).String(), "instance_id", l.InstanceID)
		return l, saved(l)
	case a.Lease != nil && a.StartedIn > 0:
		l := *a.Lease
		f.log.Info("Started stopped worker "+l.InstanceID+" in "+a.StartedIn.Round(100*time.Millisecond).String(), "instance_id", l.InstanceID)
		return l, saved(l)
	case a.Lease != nil:
		l := *a.Lease
		f.log.Info("Using worker "+l.InstanceID+" from the pool (ready for "+time.Since(a.ReadySince).Round(time.Second).String()+
			"), claimed in "+time.Since(start).Round(time.Millisecond).String(), "instance_id", l.InstanceID)
		return l, saved(l)
	default:
		f.log.Info("The warm pool has no worker for this job (" + a.Miss + "); launching a fresh worker")
	}
	return f.Launch(ctx, job, in, saved)
}

// noPool says that no pool answered: in the job log as a warning when the settings
// ask for a pool, or when its socket is there but nothing answers (a pool that
// died); otherwise only at debug level, since a runner without a pool launches cold
// by design.
func (f *Fleet) noPool(socket string, err error) {
	_, statErr := os.Stat(socket)
	if !f.s.Pool.Configured() && errors.Is(statErr, fs.ErrNotExist) {
		f.log.Debug("no warm pool; launching a fresh worker", "socket", socket, "reason", err.Error())
		return
	}
	f.log.Warn("The warm pool did not answer on "+socket+"; launching a fresh worker", "reason", err.Error())
}

// claimWait is the longest a claim waits for the pool's next word: at the cap, up
// to pool.claim_timeout; for a worker the pool launches, its launch and boot.
func (f *Fleet) claimWait() time.Duration {
	boot := f.s.Instance.LaunchTimeout.Duration + f.s.SSH.ConnectTimeout.Duration
	return max(f.s.Pool.ClaimTimeout.Duration, boot) + poolAnswerWithin
}

// waiting says in the job log why the claim waits.
func (f *Fleet) waiting(why string) {
	f.log.Info("Waiting for a worker from the pool: " + why)
}
