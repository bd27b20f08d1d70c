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

// poolAnswerWithin is how long a job waits for a pool to answer before it launches
// cold: a job never waits on a dead pool.
const poolAnswerWithin = time.Second

// Get gives the job a worker: an idle one from the pool when a pool runs and has one
// that fits the job's spec (no EC2 call), else a stopped one the pool starts (one
// StartInstances), else a fresh launch. The job log says
// which, and why. saved is called as in Launch.
func (f *Fleet) Get(ctx context.Context, job Job, in settings.Instance, saved func(Lease) error) (Lease, error) {
	start := time.Now()
	socket := f.Settings.PoolSocket()
	a, err := Claim(ctx, socket, ClaimRequest{Job: job, Spec: SpecOf(in)}, poolAnswerWithin,
		f.Settings.Pool.ClaimTimeout.Duration+poolAnswerWithin, f.waiting)
	switch {
	case errors.Is(err, errNoPool):
		f.noPool(socket, err)
	case err != nil:
		return Lease{}, err
	case a.Error != "":
		return Lease{}, fmt.Errorf("%w: %s", ErrPoolRefused, a.Error)
	case a.Lease != nil && a.StartedIn > 0:
		l := *a.Lease
		f.Log.Info("Started stopped worker "+l.InstanceID+" in "+a.StartedIn.Round(100*time.Millisecond).String(), "instance_id", l.InstanceID)
		return l, saved(l)
	case a.Lease != nil:
		l := *a.Lease
		f.Log.Info("Using worker "+l.InstanceID+" from the pool (ready for "+time.Since(a.ReadySince).Round(time.Second).String()+
			"), claimed in "+time.Since(start).Round(time.Millisecond).String(), "instance_id", l.InstanceID)
		return l, saved(l)
	default:
		f.Log.Info("The warm pool has no idle worker for this job (" + a.Miss + "); launching a fresh worker")
	}
	return f.Launch(ctx, job, in, saved)
}

// noPool says that no pool answered: in the job log as a warning when the settings
// ask for a pool, or when its socket is there but nothing answers (a pool that
// died); otherwise only at debug level, since a runner without a pool launches cold
// by design.
func (f *Fleet) noPool(socket string, err error) {
	_, statErr := os.Stat(socket)
	if !f.Settings.Pool.Configured() && errors.Is(statErr, fs.ErrNotExist) {
		f.Log.Debug("no warm pool; launching a fresh worker", "socket", socket, "reason", err.Error())
		return
	}
	f.Log.Warn("The warm pool did not answer on "+socket+"; launching a fresh worker", "reason", err.Error())
}

// waiting says in the job log why the claim waits.
func (f *Fleet) waiting(why string) {
	f.Log.Info("Waiting for a worker from the pool: " + why)
}
