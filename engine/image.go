package engine

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Pull fetches ref on the worker. registryAuth is the base64url-encoded credential
// for X-Registry-Auth ("" for anonymous); it is never logged. Progress detail goes to
// DEBUG; a pull error reported inside the stream is returned as an error.
func (w *Worker) Pull(ctx context.Context, ref, registryAuth, platform string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("pulling %q: invalid image reference: %w", ref, err)
	}
	tagged := reference.TagNameOnly(named).String()
	rc, err := w.docker.ImagePull(ctx, tagged, image.PullOptions{RegistryAuth: registryAuth, Platform: platform})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", tagged, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, debugWriter{w}, 0, false, nil); err != nil {
		return fmt.Errorf("pulling %s: %w", tagged, err)
	}
	return nil
}

// Present reports whether ref is already on the worker (for pull policies
// if-not-present and never).
func (w *Worker) Present(ctx context.Context, ref string) (bool, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false, fmt.Errorf("inspecting %q: invalid image reference: %w", ref, err)
	}
	_, err = w.docker.ImageInspect(ctx, reference.TagNameOnly(named).String())
	switch {
	case err == nil:
		return true, nil
	case errdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspecting %s: %w", ref, err)
}

// Arch is the worker's architecture as Docker reports it (x86_64, aarch64, ...).
func (w *Worker) Arch(ctx context.Context) (string, error) {
	info, err := w.docker.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("asking Docker for its architecture: %w", err)
	}
	return info.Architecture, nil
}

// debugWriter sends pull progress to the debug log, where it does not flood the job log.
type debugWriter struct{ w *Worker }

func (d debugWriter) Write(p []byte) (int, error) {
	d.w.log.Debug("pull progress", "message", string(p))
	return len(p), nil
}
