package stages

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// cleanupConnectDeadline bounds the attempt to remove containers before terminating:
// the instance is terminated either way, so this must not hold cleanup up.
const cleanupConnectDeadline = 15 * time.Second

// Cleanup removes the job's containers and volumes and terminates its instance. It is
// idempotent and works without state: it terminates every instance of this manager
// tagged with the job's key, not only the one in the state, which covers a prepare
// killed between RunInstances and saving the id, and a duplicate launch (an SDK retry
// that EC2 did not recognise as one).
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
	prov, _, perr := d.provisioner(ctx)
	if perr != nil {
		return perr
	}
	if st.InstanceID != "" && st.Address != "" { // by label: a prepare killed mid-way may not have saved their ids
		d.removeContainers(ctx, st)
	}
	ids, err := d.jobInstances(ctx, prov, key, st.InstanceID)
	if err != nil {
		return err
	}
	if err := d.terminateAll(ctx, prov, ids); err != nil {
		return err
	}
	if err := store.Remove(key); err != nil {
		return err
	}
	d.reapIfDue(ctx)
	return nil
}

func (d *Driver) removeContainers(ctx context.Context, st State) {
	w, err := d.reconnect(ctx, st, cleanupConnectDeadline)
	if err != nil {
		d.Log.Warn("Could not reach the worker to remove containers; terminating it anyway", "instance_id", st.InstanceID, "error", err)
		return
	}
	defer w.Close()
	if err := w.RemoveJob(ctx, st.JobKey); err != nil {
		d.Log.Warn("Removing job containers", "instance_id", st.InstanceID, "error", err)
	}
}

// jobInstances are the instances to terminate for the job: the one in its state and
// every instance of this manager tagged with its key (one filtered DescribeInstances).
// It says in the log when it finds more than one.
func (d *Driver) jobInstances(ctx context.Context, prov *provision.Provisioner, key, stateID string) (map[string]bool, error) {
	found, err := prov.Find(ctx, d.ownTags(key))
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	if stateID != "" {
		ids[stateID] = true
	}
	for _, i := range found {
		ids[i.ID] = true
	}
	if len(ids) > 1 {
		list := slices.Sorted(maps.Keys(ids))
		d.Log.Warn("Found more than one instance tagged with this job; terminating all of them",
			"instance_ids", strings.Join(list, ","), "state_instance_id", stateID)
	}
	return ids, nil
}

func (d *Driver) terminateAll(ctx context.Context, prov *provision.Provisioner, ids map[string]bool) error {
	var errs []error
	for id := range ids {
		if err := prov.Terminate(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		d.Log.Info("Terminated instance "+id, "instance_id", id)
	}
	return errors.Join(errs...)
}
