package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ec2-executor/ec2-executor/engine"
)

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
	w, err := d.reach(ctx, st)
	if err != nil {
		d.markUnreachable(ctx, st)
		return fmt.Errorf("reaching instance %s for stage %s: %w", st.InstanceID, stage, err)
	}
	defer w.Close()
	d.Log.Debug("running stage", "stage", stage, "container", id)
	code, err := d.runIn(ctx, w, &st, id, shellFor(st, stage), script)
	var exited *engine.ExitedError
	switch {
	case errors.Is(err, engine.ErrCancelled):
		d.Log.Warn("Stage " + stage + " cancelled: the script's processes were stopped")
		return err
	case errors.As(err, &exited):
		d.Log.Warn("The job container exited before it ran the script: its entrypoint failed or did not run the command it was given", "exit_code", exited.Code)
		code = exited.Code
	case err != nil:
		d.markUnreachable(ctx, st)
		return d.lost(ctx, st, fmt.Errorf("running stage %s on instance %s: %w", stage, st.InstanceID, err))
	}
	if code != 0 {
		return &BuildError{ExitCode: code}
	}
	return nil
}

// runIn readies the job container (showing its start output in its first stage,
// stopping a script an earlier stage's driver left behind) and execs the stage's
// script into it.
func (d *Driver) runIn(ctx context.Context, w *engine.Worker, st *State, id, shell string, script io.Reader) (int, error) {
	shown := slices.Contains(st.Shown, id)
	leftover, err := w.Ready(ctx, id, shown, d.Stdout, d.Stderr)
	if leftover {
		d.Log.Warn("The previous stage's script was still running after its driver stopped; stopped it", "container", id[:min(12, len(id))])
	}
	var exited *engine.ExitedError
	if !shown && (err == nil || errors.As(err, &exited)) {
		d.markShown(st, id)
	}
	if err != nil {
		return 0, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { d.showSpot(st, stop); close(done) }()
	defer func() { close(stop); <-done }()
	return w.RunScript(ctx, id, shell, script, d.Stdout, d.Stderr)
}

// markShown records that container id's start output was shown, so later stages
// do not show it again.
func (d *Driver) markShown(st *State, id string) {
	st.Shown = append(st.Shown, id)
	if err := d.store().Save(*st); err != nil {
		d.Log.Warn("Could not record the job container's start in the job state", "error", err)
	}
}

// predefined are the stages the docker executor runs in its helper container; every
// other stage (build_script, step_*, after_script, and any stage a newer runner
// invents) runs in the job's image.
var predefined = map[string]bool{
	"prepare_script": true, "get_sources": true, "clear_worktree": true, "restore_cache": true,
	"download_artifacts": true, "archive_cache": true, "archive_cache_on_failure": true,
	"upload_artifacts_on_success": true, "upload_artifacts_on_failure": true, "cleanup_file_variables": true,
}

// shellFor is the command that reads the stage's script from stdin.
func shellFor(st State, stage string) string {
	if predefined[stage] && st.HelperContainer != "" {
		return helperShell
	}
	return engine.BashDetectShellScript
}

func containerFor(st State, stage string) string {
	if predefined[stage] && st.HelperContainer != "" {
		return st.HelperContainer
	}
	return st.BuildContainer
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
