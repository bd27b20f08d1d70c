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

// killTimeout bounds how long a cancelled stage waits for Docker to kill its container.
const killTimeout = 4 * time.Second

// RunScript starts the container with script on its stdin, as the docker executor
// does, streams its stdout and stderr to the writers as the bytes arrive, and
// returns the script's exit code. When ctx ends first, the container is killed and
// the error wraps ErrCancelled.
func (w *Worker) RunScript(ctx context.Context, id string, script io.Reader, stdout, stderr io.Writer) (int, error) {
	hijack, err := w.docker.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, fmt.Errorf("attaching to container %s: %w", short(id), err)
	}
	defer hijack.Close()
	if err := w.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return 0, w.stopped(ctx, id, fmt.Errorf("starting container %s: %w", short(id), err))
	}
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
	return w.exitCode(ctx, id)
}

// StopLeftover kills the container when it still runs an earlier stage's script and
// reports whether it did. The runner never runs two stages of a job at once, so a
// running job container at the start of a stage can only hold a script whose driver
// died without its own shutdown (SIGKILL, the OOM killer): left alone, the next
// stage's script would queue behind it on the container's stdin until it ended.
func (w *Worker) StopLeftover(ctx context.Context, id string) (bool, error) {
	info, err := w.docker.ContainerInspect(ctx, id)
	if err != nil {
		return false, fmt.Errorf("inspecting container %s: %w", short(id), err)
	}
	if info.State == nil || !info.State.Running {
		return false, nil
	}
	if err := w.stopped(ctx, id, nil); err != nil {
		return false, err
	}
	return true, nil
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
