package stages

import (
	"context"
	"os"
	"time"
)

// pollRemoved is the fallback: a look every second.
func pollRemoved(ctx context.Context, path string, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := os.Stat(path); err != nil {
				return
			}
		}
	}
}
