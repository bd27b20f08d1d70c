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
	if st.BuildContainer == "" {
		return fmt.Errorf("job %s has no build container: prepare did not finish", st.JobKey)
	}
	script, err := os.Open(scriptPath)
	if err != nil {
		return fmt.Errorf("opening the %s script: %w", stage, err)
	}
	defer script.Close()
	w, err := engine.Connect(ctx, d.target(st, min(runConnectDeadline, d.Settings.SSH.ConnectTimeout.Duration)), d.Log)
	if err != nil {
		return fmt.Errorf("reaching instance %s for stage %s: %w", st.InstanceID, stage, err)
	}
	defer w.Close()
	d.Log.Debug("running stage", "stage", stage, "container", st.BuildContainer)
	code, err := w.RunScript(ctx, st.BuildContainer, script, d.Stdout, d.Stderr)
	if errors.Is(err, engine.ErrCancelled) {
		d.Log.Warn("Stage " + stage + " cancelled: the script's processes were stopped")
		return err
	}
	if err != nil {
		return fmt.Errorf("running stage %s on instance %s: %w", stage, st.InstanceID, err)
	}
	if code != 0 {
		return &BuildError{ExitCode: code}
	}
	return nil
}

func (d *Driver) loadState() (State, error) {
	key, err := d.Env.JobKey()
	if err != nil {
		return State{}, err
	}
	return d.store().Load(key)
}
