package workers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// ErrNoJobState means no job holds a state for a key: its prepare never saved one,
// or its cleanup already removed it.
var ErrNoJobState = errors.New("no job state")

// Holder answers which instance the job with key holds, from the job's state on this
// manager: ErrNoJobState when there is none, another error when it is unreadable.
type Holder func(key string) (instanceID string, err error)

// ReapOptions widen or soften a reap.
type ReapOptions struct {
	// DryRun lists what would be terminated and terminates nothing.
	DryRun bool
	// AllManagers also considers other managers' workers. Their job state lives on
	// their own hosts, so only their expiry tag, or their manager's stale heartbeat,
	// can condemn them.
	AllManagers bool
}

// Reap terminates this manager's workers that no job holds (after the grace period)
// and any worker past its expiry, printing one line per worker it acts on.
func (f *Fleet) Reap(ctx context.Context, opts ReapOptions, holder Holder, out io.Writer) error {
	prov := f.provisioner()
	found, err := prov.Find(ctx, f.ownership(opts.AllManagers))
	if err != nil {
		return err
	}
	var errs []error
	for _, inst := range found {
		reason := f.orphaned(inst, holder)
		if reason == "" {
			continue
		}
		if opts.DryRun {
			fmt.Fprintf(out, "would terminate %s (job %s, manager %s): %s\n", inst.ID, inst.Tags[TagJobKey], inst.Tags[TagManager], reason)
			continue
		}
		if err := prov.Terminate(ctx, inst.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "terminated %s (job %s, manager %s): %s\n", inst.ID, inst.Tags[TagJobKey], inst.Tags[TagManager], reason)
	}
	if opts.AllManagers {
		errs = append(errs, f.ReapDeadManagers(ctx, opts.DryRun, out))
	}
	return errors.Join(errs...)
}

// orphaned says why inst should be terminated, or "" to keep it.
func (f *Fleet) orphaned(inst provision.Instance, holder Holder) string {
	now := f.Now()
	if exp := f.expiry(inst); now.After(exp) {
		return "it outlived instance.max_lifetime (expired " + exp.UTC().Format(time.RFC3339) + ")"
	}
	if inst.Tags[TagManager] != f.Settings.ManagerID {
		return ""
	}
	if s := inst.Tags[TagPoolState]; s == PoolBooting || s == PoolIdle || s == PoolStopped || s == PoolStarting {
		return "" // a pool holds it, renewing its expiry tag; once the pool is gone, that tag ends it
	}
	if now.Sub(created(inst)) < f.Settings.Reap.GracePeriod.Duration {
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
	return created(inst).Add(f.Settings.Instance.MaxLifetime.Duration)
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
func (f *Fleet) ReapIfDue(ctx context.Context, holder Holder) {
	r := f.Settings.Reap
	if !r.FromCleanup {
		return
	}
	marker := filepath.Join(f.Settings.StateDir, "reap.last")
	if fi, err := os.Stat(marker); err == nil && f.Now().Sub(fi.ModTime()) < r.Interval.Duration {
		return
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		f.Log.Warn("Not reaping: cannot write the reap marker", "error", err)
		return
	}
	now := f.Now()
	_ = os.Chtimes(marker, now, now)
	if err := f.Reap(ctx, ReapOptions{}, holder, logWriter{f}); err != nil {
		f.Log.Warn("Reaping orphaned workers", "error", err)
	}
}

// logWriter turns the reaper's lines into log lines.
type logWriter struct{ f *Fleet }

func (w logWriter) Write(p []byte) (int, error) {
	w.f.Log.Info("Reaper " + strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
