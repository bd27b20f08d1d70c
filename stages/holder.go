package stages

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/workers"
)

// A successful prepare starts the job's holder (`ec2-executor hold <job key>`, in a
// session of its own with no output, so the runner neither waits for it nor signals
// it): it keeps one SSH connection to the worker and serves its Docker socket on
// <state>/jobs/<key>.sock for the run stages (engine.Worker.Serve). Once it has the
// worker it starts the job's helper and build containers, so that their starts (a
// second each) overlap the runner's first stages instead of adding to them; the
// first stage of each shows its start output from the container's log. It ends when
// cleanup removes the job's state, or when the worker's SSH connection ends. A stage
// that finds no holder reaches the worker over SSH itself.

func (d *Driver) holderSocket(key string) string { return filepath.Join(d.store().Dir, key+".sock") }

// startHolder starts the job's holder; a holder that cannot start only costs the
// stages their own SSH handshakes.
func (d *Driver) startHolder(key string) {
	if d.StartHolder == nil {
		return
	}
	if err := d.StartHolder(key); err != nil {
		d.Log.Debug("the job's connection holder did not start; each stage connects itself", "error", err)
	}
}

// Hold is the holder (the `hold` command).
func (d *Driver) Hold(ctx context.Context, key string) error {
	st, err := d.store().Load(key)
	if err != nil {
		return err
	}
	state := d.store().path(key)
	keep := func() bool {
		_, err := os.Stat(state)
		return err == nil
	}
	fleet := workers.New(d.Settings, workers.Clients{}, d.Log, d.Now)
	connected := func(w *engine.Worker) {
		go d.watchSpot(ctx, w, st)
		w.Prestart(ctx, jobContainers(st)...)
	}
	err = fleet.Hold(ctx, st.Lease, d.holderSocket(key), keep, connected)
	if !keep() {
		_ = os.Remove(d.spotPath(key)) // a notice written as cleanup removed the state
	}
	return err
}

// reach connects a run stage to the job's worker: through the holder when one
// serves the job, else over SSH (fleet.Reconnect).
func (d *Driver) reach(ctx context.Context, st State) (*engine.Worker, error) {
	if !st.Unreachable {
		w, err := engine.ConnectHeld(ctx, d.holderSocket(st.JobKey), d.Log)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			d.Log.Debug("the job's holder did not answer; connecting over SSH", "error", err)
		}
	}
	fleet, _, err := d.fleet(ctx)
	if err != nil {
		return nil, err
	}
	return fleet.Reconnect(ctx, st.Lease, d.Settings.SSH.RunConnectTimeout.Duration, st.Unreachable)
}

// lost adds what EC2 says of a worker the stage lost (workers.Fleet.Lost).
func (d *Driver) lost(ctx context.Context, st State, err error) error {
	fleet, _, ferr := d.fleet(ctx)
	if ferr != nil {
		return err
	}
	lost := fleet.Lost(ctx, st.Lease, err)
	if errors.Is(lost, workers.ErrReclaimed) {
		d.recordReclaim(st)
	}
	return lost
}

// jobContainers are the job's helper and build containers, those it has, in the
// order the runner first needs them.
func jobContainers(st State) []string {
	var ids []string
	for _, id := range []string{st.HelperContainer, st.BuildContainer} {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}
