package stages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
)

// runConnectDeadline bounds reconnecting to a worker that prepare already reached: a
// worker that does not answer within it is gone, and waiting longer only delays the
// system failure the job should report.
const runConnectDeadline = 30 * time.Second

// Run feeds one stage's script to the job's container and streams its output. A
// non-zero exit is a BuildError; a cancelled stage (the runner's SIGTERM) stops the
// script's processes before returning.
func (d *Driver) Run(ctx context.Context, scriptPath, stage string) error {
	st, err := d.loadState()
	if err != nil {
		return err
	}
	id := containerFor(st, stage)
	if id == "" {
		return fmt.Errorf("job %s has no container for stage %s: prepare did not finish", st.JobKey, stage)
	}
	script, err := os.Open(scriptPath)
	if err != nil {
		return fmt.Errorf("opening the %s script: %w", stage, err)
	}
	defer script.Close()
	w, err := d.reconnect(ctx, st, runConnectDeadline)
	if err != nil {
		d.markUnreachable(ctx, st)
		return fmt.Errorf("reaching instance %s for stage %s: %w", st.InstanceID, stage, err)
	}
	defer w.Close()
	d.Log.Debug("running stage", "stage", stage, "container", id)
	if err := d.stopLeftover(ctx, w, id); err != nil {
		return d.lostWorker(ctx, st, fmt.Errorf("running stage %s on instance %s: %w", stage, st.InstanceID, err))
	}
	code, err := w.RunScript(ctx, id, script, d.Stdout, d.Stderr)
	if errors.Is(err, engine.ErrCancelled) {
		d.Log.Warn("Stage " + stage + " cancelled: the script's processes were stopped")
		return err
	}
	if err != nil {
		d.markUnreachable(ctx, st)
		return d.lostWorker(ctx, st, fmt.Errorf("running stage %s on instance %s: %w", stage, st.InstanceID, err))
	}
	if code != 0 {
		return &BuildError{ExitCode: code}
	}
	return nil
}

// stopLeftover stops a script that an earlier stage left running when its driver died
// without its own shutdown, and says so in the job log, so this stage runs at once
// instead of queueing behind the orphan until it ends or the job times out.
func (d *Driver) stopLeftover(ctx context.Context, w *engine.Worker, id string) error {
	stopped, err := w.StopLeftover(ctx, id)
	if err != nil {
		return err
	}
	if stopped {
		d.Log.Warn("The previous stage's script was still running after its driver stopped; stopped it", "container", id[:min(12, len(id))])
	}
	return nil
}

// predefined are the stages the docker executor runs in its helper container; every
// other stage (build_script, step_*, after_script, and any stage a newer runner
// invents) runs in the job's image.
var predefined = map[string]bool{
	"prepare_script": true, "get_sources": true, "clear_worktree": true, "restore_cache": true,
	"download_artifacts": true, "archive_cache": true, "archive_cache_on_failure": true,
	"upload_artifacts_on_success": true, "upload_artifacts_on_failure": true, "cleanup_file_variables": true,
}

func containerFor(st State, stage string) string {
	if predefined[stage] && st.HelperContainer != "" {
		return st.HelperContainer
	}
	return st.BuildContainer
}

// reconnect reaches a worker prepare already reached. After a short first try it
// asks EC2 once whether the worker still exists, so a terminated worker fails the
// stage at once instead of after the whole deadline.
func (d *Driver) reconnect(ctx context.Context, st State, deadline time.Duration) (*engine.Worker, error) {
	deadline = min(deadline, d.Settings.SSH.ConnectTimeout.Duration)
	first := min(5*time.Second, deadline)
	if st.Unreachable {
		deadline = first
	}
	w, err := engine.Connect(ctx, d.target(st, first), d.Log)
	if err == nil || errors.Is(err, engine.ErrHostKeyMismatch) || deadline <= first {
		return w, err
	}
	if reason := d.goneReason(ctx, st); reason != "" {
		return nil, fmt.Errorf("%s: %w", reason, err)
	}
	return engine.Connect(ctx, d.target(st, deadline-first), d.Log)
}

// lostWorker adds what EC2 says about a worker the stage lost, so a terminated or
// spot-interrupted worker reads as such instead of as an SSH error. It is still a
// system failure: `retry: when: runner_system_failure` runs the job again.
func (d *Driver) lostWorker(ctx context.Context, st State, err error) error {
	if reason := d.goneReason(ctx, st); reason != "" {
		return fmt.Errorf("%s: %w", reason, err)
	}
	return err
}

// goneReason asks EC2 once whether the job's worker is gone and says how, or returns
// "" when it still runs or EC2 cannot tell.
func (d *Driver) goneReason(ctx context.Context, st State) string {
	prov, _, err := d.provisioner(ctx)
	if err != nil || st.InstanceID == "" {
		return ""
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	inst, err := prov.Describe(dctx, st.InstanceID)
	switch {
	case err != nil || !inst.Gone():
		return ""
	case inst.Interrupted():
		return fmt.Sprintf("the worker is gone: EC2 reclaimed spot instance %s (%s); this system failure is retried by `retry: when: runner_system_failure`",
			inst.ID, inst.StateReason)
	}
	return fmt.Sprintf("the worker is gone: instance %s is %s (%s)", inst.ID, inst.State, inst.StateReason)
}

// markUnreachable records that this job lost its worker, so the stages the runner
// still runs after the failure do not each wait the whole reconnect deadline.
func (d *Driver) markUnreachable(ctx context.Context, st State) {
	if ctx.Err() != nil { // cancelled, not lost
		return
	}
	st.Unreachable = true
	if err := d.store().Save(st); err != nil {
		d.Log.Warn("Could not record the lost worker in the job state", "error", err)
	}
}

func (d *Driver) loadState() (State, error) {
	key, err := d.Env.JobKey()
	if err != nil {
		return State{}, err
	}
	return d.store().Load(key)
}
