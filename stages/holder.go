package stages

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/workers"
)

// The job's connection holder, all of it. A job's stages are separate processes,
// and each used to pay an SSH handshake and a Docker ping to reach the worker: about
// as much again as the stage's own exec. A successful prepare starts the holder
// (`ec2-executor hold <job key>`, SpawnHolder: in a session of its own with no
// output, so the runner neither waits for it nor signals it). It keeps one SSH
// connection to the worker and serves its Docker socket on <state>/jobs/<key>.sock
// for the run stages (engine.Worker.Serve). Once it has the worker it starts the
// job's helper and build containers, so that their starts (a second each) overlap
// the runner's first stages instead of adding to them (the first stage of each
// shows its start output from the container's log), and it watches a spot worker
// for EC2's reclaim notice (spot.go). It ends when cleanup removes the job's state
// (stateRemoved: inotify, not polling), or when the worker's SSH connection ends.
// A stage that finds no holder, or one that does not answer, reaches the worker
// over SSH itself (reach).

func (d *Driver) holderSocket(key string) string { return filepath.Join(d.store().Dir, key+".sock") }

// SpawnHolder starts `hold` for a job: this binary, with the same settings file, in
// a session of its own (the runner signals the stage's process group) and with no
// stdin, stdout or stderr (the runner waits for the stage's pipes to close,
// runner-protocol.md §1.3).
func SpawnHolder(config, key string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "--config", config, "hold", key)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

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
	fleet := workers.New(d.Settings, workers.Clients{}, d.Log, d.Now) // it only reaches the worker: no AWS client
	w, err := fleet.Connect(ctx, st.Lease)
	if err != nil {
		return err
	}
	defer w.Close()
	go w.Prestart(ctx, jobContainers(st)...)
	go d.watchSpot(ctx, w, st)
	ended := stateRemoved(ctx, d.store().path(key))
	err = w.Serve(ctx, d.holderSocket(key), ended)
	select {
	case <-ended:
		_ = os.Remove(d.spotPath(key)) // a notice written as cleanup removed the state
	default:
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

// lost adds what EC2 says of a worker the stage lost (workers.Fleet.Lost), and
// records a spot reclaim.
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
