package workers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// ErrNoJobState means no job holds a state for a key: its prepare never saved one,
// or its cleanup already removed it.
var ErrNoJobState = errors.New("no job state")

// Leases answers which instance the job with key holds, from the job's state on this
// manager: ErrNoJobState when there is none, another error when it is unreadable.
type Leases func(key string) (instanceID string, err error)

// ReapOptions widen or soften a reap.
type ReapOptions struct {
	// DryRun lists what would be terminated and terminates nothing.
	DryRun bool
	// AllManagers also considers other managers' workers. Their job state lives on
	// their own hosts, so only their expiry tag, or their manager's stale heartbeat,
	// can condemn them.
	AllManagers bool
}

// Reaped is one worker the reaper terminated or, in a dry run, would terminate.
type Reaped struct {
	InstanceID, JobKey, Manager, Why string
	DryRun                           bool
}

func (r Reaped) String() string {
	verb := "terminated"
	if r.DryRun {
		verb = "would terminate"
	}
	return fmt.Sprintf("%s %s (job %s, manager %s): %s", verb, r.InstanceID, r.JobKey, r.Manager, r.Why)
}

// Reap terminates this manager's workers that no job holds (after the grace period)
// and any worker past its expiry, and returns what it terminated; with
// opts.AllManagers, also the workers of managers that stopped (ReapDeadManagers).
// A worker it could not terminate is in the error, not in the list.
func (f *Fleet) Reap(ctx context.Context, opts ReapOptions, holder Leases) ([]Reaped, error) {
	found, err := f.prov.Find(ctx, f.ownership(opts.AllManagers))
	if err != nil {
		return nil, err
	}
	var done []Reaped
	var errs []error
	for _, inst := range found {
		if why := f.orphaned(inst, holder); why != "" {
			done, errs = f.end(ctx, inst, inst.Tags[TagManager], why, opts.DryRun, done, errs)
		}
	}
	if opts.AllManagers {
		dead, err := f.ReapDeadManagers(ctx, opts.DryRun)
		done, errs = append(done, dead...), append(errs, err)
	}
	return done, errors.Join(errs...)
}

// end terminates inst (unless dryRun) and adds it to done, or its failure to errs.
func (f *Fleet) end(ctx context.Context, inst provision.Instance, manager, why string, dryRun bool, done []Reaped, errs []error) ([]Reaped, []error) {
	r := Reaped{InstanceID: inst.ID, JobKey: inst.Tags[TagJobKey], Manager: manager, Why: why, DryRun: dryRun}
	if !dryRun {
		if err := f.prov.Terminate(ctx, inst.ID); err != nil {
			return done, append(errs, err)
		}
	}
	return append(done, r), errs
}

// LogReaped writes what a reap did into the log, one line per worker, with its ids as
// fields.
func (f *Fleet) LogReaped(rs []Reaped) {
	for _, r := range rs {
		f.log.Info("Reaper terminated a worker", "instance_id", r.InstanceID, "job_key", r.JobKey, "manager", r.Manager, "why", r.Why)
	}
}

// orphaned says why inst should be terminated, or "" to keep it.
func (f *Fleet) orphaned(inst provision.Instance, holder Leases) string {
	now := f.now()
	if exp := f.expiry(inst); now.After(exp) {
		return "it outlived instance.max_lifetime (expired " + exp.UTC().Format(time.RFC3339) + ")"
	}
	if inst.Tags[TagManager] != f.s.ManagerID {
		return ""
	}
	if s := inst.Tags[TagPoolState]; s == PoolBooting || s == PoolIdle || s == PoolStopped || s == PoolStarting {
		return "" // a pool holds it, renewing its expiry tag; once the pool is gone, that tag ends it
	}
	if now.Sub(created(inst)) < f.s.Reap.GracePeriod.Duration {
		return ""
	}
	id, err := holder(inst.Tags[TagJobKey])
	switch {
	case errors.Is(err, ErrNoJobState):
		return "its job state is gone"
	case errors.Is(err, fs.ErrPermission):
		// The state is there, written by a user this process is not (the pool or
		// reaper runs as another user than the stages): its job may well be running.
		// The expiry tag still ends the worker.
		return ""
	case err != nil:
		return "its job state is unreadable"
	case id == "":
		return "its job state has no instance id (prepare died right after launching it)"
	case id != inst.ID:
		return "its job state names another instance (" + id + ")"
	}
	return ""
}

// expiry is the expires-at tag, or creation plus the configured lifetime for a
// worker whose tag is missing or mangled.
func (f *Fleet) expiry(inst provision.Instance) time.Time {
	if t, err := time.Parse(time.RFC3339, inst.Tags[TagExpiresAt]); err == nil {
		return t
	}
	return created(inst).Add(f.s.Instance.MaxLifetime.Duration)
}

func created(inst provision.Instance) time.Time {
	if t, err := time.Parse(time.RFC3339, inst.Tags[TagCreatedAt]); err == nil {
		return t
	}
	return inst.LaunchTime
}

// ReapIfDue runs the reaper at most once per reap.interval per manager host (cleanup
// calls it), remembered by the modification time of a marker file in the state
// directory. Its failures are logged, never the job's.
func (f *Fleet) ReapIfDue(ctx context.Context, holder Leases) {
	r := f.s.Reap
	if !r.FromCleanup {
		return
	}
	marker := filepath.Join(f.s.StateDir, "reap.last")
	if fi, err := os.Stat(marker); err == nil && f.now().Sub(fi.ModTime()) < r.Interval.Duration {
		return
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		f.log.Warn("Not reaping: cannot write the reap marker", "error", err)
		return
	}
	now := f.now()
	_ = os.Chtimes(marker, now, now)
	done, err := f.Reap(ctx, ReapOptions{}, holder)
	f.LogReaped(done)
	if err != nil {
		f.log.Warn("Reaping orphaned workers", "error", err)
	}
}
