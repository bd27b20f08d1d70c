package stages

import (
	"context"
	"errors"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// cleanupConnectDeadline bounds the attempt to remove containers before terminating:
// the instance is terminated either way, so this must not hold cleanup up.
const cleanupConnectDeadline = 15 * time.Second

// Cleanup removes the job's containers and volumes and terminates its instance. It is
// idempotent and works without state: the instance is also looked up by the job's
// tags, which covers a prepare killed between RunInstances and saving the id.
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
	ids := map[string]bool{}
	if st.InstanceID != "" {
		ids[st.InstanceID] = true
	}
	if st.InstanceID == "" { // state lost, or prepare died before saving the id
		found, err := prov.Find(ctx, d.ownTags(key))
		if err != nil {
			return err
		}
		for _, i := range found {
			ids[i.ID] = true
		}
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
