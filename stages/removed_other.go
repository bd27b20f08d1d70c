//go:build !linux

package stages

import "context"

// stateRemoved closes its channel once path is removed or ctx ends, looking every
// second (Linux waits on inotify instead).
func stateRemoved(ctx context.Context, path string) <-chan struct{} {
	done := make(chan struct{})
	go pollRemoved(ctx, path, done)
	return done
}
