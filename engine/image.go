package engine

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Pull fetches ref on the worker. registryAuth is the base64url-encoded credential
// for X-Registry-Auth ("" for anonymous); it is never logged. Progress detail goes to
// DEBUG; a pull error reported inside the stream is returned as an error.
func (w *Worker) Pull(ctx context.Context, ref, registryAuth string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("pulling %q: invalid image reference: %w", ref, err)
	}
	tagged := reference.TagNameOnly(named).String()
	rc, err := w.docker.ImagePull(ctx, tagged, image.PullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", tagged, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, debugWriter{w}, 0, false, nil); err != nil {
		return fmt.Errorf("pulling %s: %w", tagged, err)
	}
	return nil
}

// debugWriter sends pull progress to the debug log, where it does not flood the job log.
type debugWriter struct{ w *Worker }

func (d debugWriter) Write(p []byte) (int, error) {
	d.w.log.Debug("pull progress", "message", string(p))
	return len(p), nil
}
