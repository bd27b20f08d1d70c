package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
// script can be exec'd into it. The first stage that needs the container (shown is
// false) shows the output of the image's entrypoint, read from the container's log
// up to the keeper's ready line, whoever started it: the stage itself, or the job's
// holder ahead of it (Prestart), so the entrypoint runs once either way, and a
// container whose entrypoint already exited gives its exit code to that stage. A
// container that is not running when a later stage needs it is started again. A
// running container that still runs an earlier stage's script is killed and started
// again: the runner never runs two stages of a job at once, so that script's driver
// died without its own shutdown (SIGKILL, the OOM killer). leftover reports that case.
func (w *Worker) Ready(ctx context.Context, id string, shown bool, stdout, stderr io.Writer) (leftover bool, err error) {
	leftover, err = w.ready(ctx, id, shown, stdout, stderr)
	if err != nil {
		err = cancelledOr(ctx, err)
	}
	return leftover, err
}

func (w *Worker) ready(ctx context.Context, id string, shown bool, stdout, stderr io.Writer) (leftover bool, err error) {
	info, err := w.docker.ContainerInspect(ctx, id)
	if err != nil {
		return false, fmt.Errorf("inspecting container %s: %w", short(id), err)
	}
	state := info.State
	if state == nil {
		state = &container.State{}
	}
	since := lastEnd(state)
	switch {
	case (state.Running || state.Status == "exited") && !shown:
		return false, w.follow(ctx, id, "", stdout, stderr)
	case state.Running:
		busy, err := w.runningExec(ctx, info.ExecIDs)
		if err != nil || !busy {
			return false, err
		}
		if err := w.stopped(ctx, id, nil); err != nil {
			return false, err
		}
		leftover = true
		if info, err = w.docker.ContainerInspect(ctx, id); err != nil {
			return true, fmt.Errorf("inspecting container %s: %w", short(id), err)
		}
		since = lastEnd(info.State)
	}
	return leftover, w.start(ctx, id, since, stdout, stderr)
}

// lastEnd is when the container's last run ended, on the worker's clock, or "" when
// it never ran. Its log from then on is its next run's (Docker records StartedAt
// only once the process runs, after its first words).
func lastEnd(state *container.State) string {
	if state == nil || state.FinishedAt == "" || strings.HasPrefix(state.FinishedAt, "0001-") {
		return ""
	}
	return state.FinishedAt
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

// Prestart starts the job's containers that no stage started yet, in the order
// given (the one the runner needs first first: side by side, the two starts slowed
// each other down on the worker's Docker), so the first stage of each finds it
// running; the job's holder calls it once it has the worker. A failure is left for
// that stage to meet and report.
func (w *Worker) Prestart(ctx context.Context, ids ...string) {
	for _, id := range ids {
		if err := w.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			w.log.Debug("starting a job container ahead of its stage", "container", short(id), "error", err)
		}
	}
}

// start starts the container (Docker answers "not modified" when the holder just
// did) and follows its log since its last run ended.
func (w *Worker) start(ctx context.Context, id, since string, stdout, stderr io.Writer) error {
	if err := w.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return w.stopped(ctx, id, fmt.Errorf("starting container %s: %w", short(id), err))
	}
	return w.follow(ctx, id, since, stdout, stderr)
}

// follow streams the container's log since since (the worker's clock, as Docker
// reports it; empty for all of it) until the keeper says it is ready; a container
// that ends first is an *ExitedError with its exit code.
func (w *Worker) follow(ctx context.Context, id, since string, stdout, stderr io.Writer) error {
	logs, err := w.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Since: since})
	if err != nil {
		return w.stopped(ctx, id, fmt.Errorf("reading the start output of container %s: %w", short(id), err))
	}
	defer logs.Close()
	out := newReadyWriter(stdout)
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, stderr, logs)
		copied <- err
	}()
	select {
	case <-out.ready:
		logs.Close()
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
