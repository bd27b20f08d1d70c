package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrCancelled means the stage was cancelled (the runner's SIGTERM) and the script's
// processes were stopped.
var ErrCancelled = errors.New("stage cancelled")

// ExitedError means a job container ended before it was ready for a script: its
// entrypoint failed, or ran something other than the command it was given. Code is
// the container's exit code, which the docker executor would report as the stage's.
type ExitedError struct{ Code int }

func (e *ExitedError) Error() string {
	return fmt.Sprintf("the job container exited with code %d before it ran the script", e.Code)
}

// killTimeout bounds how long a cancelled stage waits for Docker to kill its container.
const killTimeout = 4 * time.Second

// Ready makes sure job container id runs its keeper and nothing else, so the stage's
// script can be exec'd into it. A container that is not running is started, with the
// output of the image's entrypoint streamed to the writers. A running container that
// still runs an earlier stage's script is killed and started again: the runner never
// runs two stages of a job at once, so that script's driver died without its own
// shutdown (SIGKILL, the OOM killer). leftover reports that case.
func (w *Worker) Ready(ctx context.Context, id string, stdout, stderr io.Writer) (leftover bool, err error) {
	leftover, err = w.ready(ctx, id, stdout, stderr)
	if err != nil {
		err = cancelledOr(ctx, err)
	}
	return leftover, err
}

func (w *Worker) ready(ctx context.Context, id string, stdout, stderr io.Writer) (leftover bool, err error) {
	info, err := w.docker.ContainerInspect(ctx, id)
	if err != nil {
		return false, fmt.Errorf("inspecting container %s: %w", short(id), err)
	}
	if info.State != nil && info.State.Running {
		busy, err := w.runningExec(ctx, info.ExecIDs)
		if err != nil || !busy {
			return false, err
		}
		if err := w.stopped(ctx, id, nil); err != nil {
			return false, err
		}
		leftover = true
	}
	return leftover, w.start(ctx, id, stdout, stderr)
}

func (w *Worker) runningExec(ctx context.Context, ids []string) (bool, error) {
	for _, e := range ids {
		in, err := w.docker.ContainerExecInspect(ctx, e)
		if err != nil {
			return false, fmt.Errorf("inspecting exec %s: %w", short(e), err)
		}
		if in.Running {
			return true, nil
		}
	}
	return false, nil
}

// start starts the container and streams its output until the keeper says it is
// ready; a container that ends first is an *ExitedError with its exit code.
func (w *Worker) start(ctx context.Context, id string, stdout, stderr io.Writer) error {
	hijack, err := w.docker.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("attaching to container %s: %w", short(id), err)
	}
	defer hijack.Close()
	if err := w.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return w.stopped(ctx, id, fmt.Errorf("starting container %s: %w", short(id), err))
	}
	out := newReadyWriter(stdout)
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, stderr, hijack.Reader)
		copied <- err
	}()
	select {
	case <-out.ready:
		hijack.Close()
		<-copied
		return nil
	case err := <-copied:
		out.flush()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("reading output of container %s: %w", short(id), err)
		}
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		return w.stopped(ctx, id, fmt.Errorf("%w: killed container %s as it started", ErrCancelled, short(id)))
	}
	code, err := w.exitCode(ctx, id)
	if err != nil {
		return err
	}
	return &ExitedError{Code: code}
}

// cancelledOr marks err as the stage's cancellation when the stage was cancelled
// while it waited on Docker (a SIGTERM as the container starts is no Docker error).
func cancelledOr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ErrCancelled) {
		return fmt.Errorf("%w: %w", ErrCancelled, err)
	}
	return err
}

// RunScript execs shell in the running job container with script on its stdin,
// streams its stdout and stderr to the writers as the bytes arrive, and returns the
// script's exit code. When ctx ends first, the container is killed (the next stage
// starts it again) and the error wraps ErrCancelled.
func (w *Worker) RunScript(ctx context.Context, id, shell string, script io.Reader, stdout, stderr io.Writer) (int, error) {
	ex, err := w.docker.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: stageCmd(shell),
		AttachStdin: true, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, fmt.Errorf("creating the script's exec in container %s: %w", short(id), err)
	}
	hijack, err := w.docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return 0, fmt.Errorf("starting the script in container %s: %w", short(id), err)
	}
	defer hijack.Close()
	go func() {
		_, _ = io.Copy(hijack.Conn, script)
		_ = hijack.CloseWrite()
	}()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, hijack.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil && ctx.Err() == nil {
			return 0, fmt.Errorf("reading output of container %s: %w", short(id), err)
		}
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		return 0, w.stopped(ctx, id, fmt.Errorf("%w: killed the script in container %s", ErrCancelled, short(id)))
	}
	in, err := w.docker.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return 0, fmt.Errorf("reading the script's exit code in container %s: %w", short(id), err)
	}
	return in.ExitCode, nil
}

func (w *Worker) exitCode(ctx context.Context, id string) (int, error) {
	waitC, errC := w.docker.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-waitC:
		if res.Error != nil && res.Error.Message != "" {
			return 0, fmt.Errorf("waiting for container %s: %s", short(id), res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errC:
		if ctx.Err() != nil {
			return 0, w.stopped(ctx, id, fmt.Errorf("%w: killed the script in container %s", ErrCancelled, short(id)))
		}
		return 0, fmt.Errorf("waiting for container %s: %w", short(id), err)
	}
}

// stopped kills the container on a context detached from the cancelled one, so a
// cancelled stage leaves no script process running, and returns cause.
func (w *Worker) stopped(ctx context.Context, id string, cause error) error {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	if err := w.docker.ContainerKill(kctx, id, "KILL"); err != nil {
		w.log.Debug("killing container", "container", short(id), "error", err)
	}
	waitC, errC := w.docker.ContainerWait(kctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		return errors.Join(cause, fmt.Errorf("container %s may still be running: %w", short(id), err))
	}
	return cause
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
