package stages

import (
	"context"
	"errors"
	"os"

	"github.com/ec2-executor/ec2-executor/workers"
)

// Cleanup removes the job's containers and volumes and releases its worker. It is
// idempotent and works without state: the release covers every instance of this
// manager tagged with the job's key, not only the one in the state, which covers a
// prepare killed between RunInstances and saving the id, and a duplicate launch.
func (d *Driver) Cleanup(ctx context.Context) error {
	key, err := d.Env.JobKey()
	if err != nil {
		return err
	}
	store := d.store()
	st, err := store.Load(key)
	switch {
	case errors.Is(err, ErrNoState) && !d.Env.KeyFromConfig():
		// prepare saves state before RunInstances: without state or a key from
		// config, nothing was launched for this attempt, and no EC2 call is needed.
		d.Log.Debug("No job state and no job key from config: nothing to clean up")
		return nil
	case err != nil && !errors.Is(err, ErrNoState):
		d.Log.Warn("Job state unreadable; finding the instance by its tags", "error", err)
	}
	fleet, clients, err := d.fleet(ctx)
	if err != nil {
		return err
	}
	if st.InstanceID != "" && st.Address != "" { // by label: a prepare killed mid-way may not have saved their ids
		d.removeContainers(ctx, fleet, st)
	}
	// A pooled worker goes back to the pool, which keeps it (wiped) or ends it; any
	// other, or one no pool took, is terminated with every instance tagged with the job.
	noticed := d.spotNoticed(&st)
	if !(st.Address != "" && fleet.GiveBack(ctx, d.workerJob(key), st.Lease, noticed)) {
		if err := fleet.Release(ctx, key, st.Lease); err != nil {
			return err
		}
	}
	d.reportCost(ctx, clients, st)
	if err := store.Remove(key); err != nil {
		return err
	}
	_ = os.Remove(d.holderSocket(key)) // the holder ends with the state; a killed one leaves its socket
	_ = os.Remove(d.spotPath(key))
	fleet.ReapIfDue(ctx, d.holder)
	return nil
}

func (d *Driver) removeContainers(ctx context.Context, fleet *workers.Fleet, st State) {
	w, err := fleet.Reconnect(ctx, st.Lease, d.Settings.SSH.CleanupConnectTimeout.Duration, st.Unreachable)
	if err != nil {
		d.Log.Warn("Could not reach the worker to remove containers; terminating it anyway", "instance_id", st.InstanceID, "error", err)
		return
	}
	defer w.Close()
	if err := w.RemoveJob(ctx, st.JobKey); err != nil {
		d.Log.Warn("Removing job containers", "instance_id", st.InstanceID, "error", err)
	}
}
