package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// ReapOptions widen or soften a reap.
type ReapOptions struct {
	// DryRun lists what would be terminated and terminates nothing.
	DryRun bool
	// AllManagers also considers other managers' workers. Their job state lives on
	// their own hosts, so only the expiry tag can condemn them.
	AllManagers bool
}

// Reap terminates this manager's workers whose job state is gone (after the grace
// period) and any worker past its expiry, printing one line per worker it acts on.
func (d *Driver) Reap(ctx context.Context, opts ReapOptions, out io.Writer) error {
	prov, _, err := d.provisioner(ctx)
	if err != nil {
		return err
	}
	found, err := prov.Find(ctx, d.ownership(opts.AllManagers))
	if err != nil {
		return err
	}
	var errs []error
	for _, inst := range found {
		reason := d.orphaned(inst)
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
	return errors.Join(errs...)
}

// orphaned says why inst should be terminated, or "" to keep it.
func (d *Driver) orphaned(inst provision.Instance) string {
	now := d.Now()
	if exp := d.expiry(inst); now.After(exp) {
		return "it outlived instance.max_lifetime (expired " + exp.UTC().Format(time.RFC3339) + ")"
	}
	if inst.Tags[TagManager] != d.Settings.ManagerID {
		return ""
	}
	if now.Sub(created(inst)) < d.Settings.Reap.GracePeriod.Duration {
		return ""
	}
	st, err := d.store().Load(inst.Tags[TagJobKey])
	switch {
	case errors.Is(err, ErrNoState):
		return "its job state is gone"
	case err != nil:
		return "its job state is unreadable"
	case st.InstanceID == "":
		return "its job state has no instance id (prepare died right after launching it)"
	case st.InstanceID != inst.ID:
		return "its job state names another instance (" + st.InstanceID + ")"
	}
	return ""
}

// expiry is the expires-at tag, or creation plus the configured lifetime for a
// worker whose tag is missing or mangled.
func (d *Driver) expiry(inst provision.Instance) time.Time {
	if t, err := time.Parse(time.RFC3339, inst.Tags[TagExpiresAt]); err == nil {
		return t
	}
	return created(inst).Add(d.Settings.Instance.MaxLifetime.Duration)
}

func created(inst provision.Instance) time.Time {
	if t, err := time.Parse(time.RFC3339, inst.Tags[TagCreatedAt]); err == nil {
		return t
	}
	return inst.LaunchTime
}

// ownership selects the driver's workers: this manager's, or every manager's.
func (d *Driver) ownership(allManagers bool) map[string]string {
	tags := map[string]string{TagManagedBy: ManagedByThis}
	if !allManagers {
		tags[TagManager] = d.Settings.ManagerID
	}
	return tags
}

// reapIfDue runs the reaper from cleanup at most once per reap.interval per manager
// host, remembered by the modification time of a marker file in the state directory.
// Its failures are logged, never the job's.
func (d *Driver) reapIfDue(ctx context.Context) {
	r := d.Settings.Reap
	if !r.FromCleanup {
		return
	}
	marker := filepath.Join(d.Settings.StateDir, "reap.last")
	if fi, err := os.Stat(marker); err == nil && d.Now().Sub(fi.ModTime()) < r.Interval.Duration {
		return
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		d.Log.Warn("Not reaping: cannot write the reap marker", "error", err)
		return
	}
	now := d.Now()
	_ = os.Chtimes(marker, now, now)
	if err := d.Reap(ctx, ReapOptions{}, logWriter{d}); err != nil {
		d.Log.Warn("Reaping orphaned workers", "error", err)
	}
}

// logWriter turns the reaper's lines into log lines.
type logWriter struct{ d *Driver }

func (w logWriter) Write(p []byte) (int, error) {
	w.d.Log.Info("Reaper " + strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
