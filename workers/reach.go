package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/engine"
)

// Reach connects to a worker that was just launched or claimed, waiting up to
// ssh.connect_timeout for its sshd (with the pinned host key), its boot's readiness
// marker (not for a claimed pool worker: the pool waited for it) and Docker. A boot
// step that failed ends the wait at once, with the worker's report.
func (f *Fleet) Reach(ctx context.Context, l Lease) (*engine.Worker, error) {
	// The pool looked at a pooled worker's markers (Check) before it handed it out.
	return f.reach(ctx, l, l.Source != SourcePool)
}

// Check is the pool's Reach of a worker it launched or started: boot markers
// included, since every one of its leases is a pool lease.
func (f *Fleet) Check(ctx context.Context, l Lease) (*engine.Worker, error) {
	return f.reach(ctx, l, true)
}

func (f *Fleet) reach(ctx context.Context, l Lease, markers bool) (*engine.Worker, error) {
	start := f.now()
	t := f.target(l, f.s.SSH.ConnectTimeout.Duration)
	if markers {
		t.Boot = &engine.BootMarkers{Ready: cloudinit.ReadyFile, Failed: cloudinit.FailedFile, Earlier: cloudinit.EarlierReadyFile}
	}
	w, err := engine.Connect(ctx, t, f.log)
	if err != nil {
		return nil, fmt.Errorf("waiting for instance %s: %w", l.InstanceID, err)
	}
	f.log.Info("Instance "+l.InstanceID+" answers over SSH and Docker", "after", f.now().Sub(start).Round(10*time.Millisecond).String())
	if len(w.Boot.Stages) > 0 {
		f.log.Info("Instance " + l.InstanceID + " booted: cloud-init " + w.Boot.String())
	}
	return w, nil
}

// Reconnect reaches a worker an earlier stage already reached, within deadline (and
// never longer than ssh.connect_timeout). After a short first try
// (ssh.reconnect_first_try) it asks EC2 once whether the worker still exists, so a
// terminated worker fails the stage at once instead of after the whole deadline.
// lost says an earlier stage already lost it: then only the first try is made.
func (f *Fleet) Reconnect(ctx context.Context, l Lease, deadline time.Duration, lost bool) (*engine.Worker, error) {
	deadline = min(deadline, f.s.SSH.ConnectTimeout.Duration)
	first := min(f.s.SSH.ReconnectFirstTry.Duration, deadline)
	if lost {
		deadline = first
	}
	w, err := engine.Connect(ctx, f.target(l, first), f.log)
	if err == nil || errors.Is(err, engine.ErrHostKeyMismatch) || deadline <= first {
		return w, err
	}
	if reason, _ := f.gone(ctx, l); reason != "" {
		return nil, fmt.Errorf("%s: %w", reason, err)
	}
	return engine.Connect(ctx, f.target(l, deadline-first), f.log)
}

// Lost adds what EC2 says about a worker a stage lost, so a terminated or
// spot-interrupted worker reads as such instead of as an SSH error. It is still a
// system failure: `retry: when: runner_system_failure` runs the job again.
func (f *Fleet) Lost(ctx context.Context, l Lease, err error) error {
	reason, reclaimed := f.gone(ctx, l)
	switch {
	case reason == "":
		return err
	case reclaimed:
		return &reclaimedError{reason: reason, err: err}
	}
	return fmt.Errorf("%s: %w", reason, err)
}

// ErrReclaimed is in the error of a stage whose spot worker EC2 reclaimed.
var ErrReclaimed = errors.New("spot worker reclaimed")

// reclaimedError reads as EC2's reason and the stage's error, and is both
// ErrReclaimed and that error.
type reclaimedError struct {
	reason string
	err    error
}

func (e *reclaimedError) Error() string   { return e.reason + ": " + e.err.Error() }
func (e *reclaimedError) Unwrap() []error { return []error{ErrReclaimed, e.err} }

// gone asks EC2 once whether the lease's worker is gone and says how (reclaimed:
// EC2 took the spot worker back), or returns "" when it still runs or EC2 cannot
// tell.
func (f *Fleet) gone(ctx context.Context, l Lease) (reason string, reclaimed bool) {
	if l.InstanceID == "" {
		return "", false
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	inst, err := f.prov.Describe(dctx, l.InstanceID)
	switch {
	case err != nil || !inst.Gone():
		return "", false
	case inst.Interrupted():
		return fmt.Sprintf("the worker is gone: EC2 reclaimed spot instance %s (%s); this system failure is retried by `retry: when: runner_system_failure`, and the retry launches on-demand",
			inst.ID, inst.StateReason), true
	}
	return fmt.Sprintf("the worker is gone: instance %s is %s (%s)", inst.ID, inst.State, inst.StateReason), false
}

// Connect reaches the lease's worker over SSH within ssh.run_connect_timeout, with
// no boot markers and no EC2 lookup: the job's holder's own connection.
func (f *Fleet) Connect(ctx context.Context, l Lease) (*engine.Worker, error) {
	w, err := engine.Connect(ctx, f.target(l, f.s.SSH.RunConnectTimeout.Duration), f.log)
	if err != nil {
		return nil, fmt.Errorf("holding instance %s: %w", l.InstanceID, err)
	}
	return w, nil
}
