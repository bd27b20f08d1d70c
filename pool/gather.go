package pool

import (
	"context"
	"time"
)

// gather waits for a first request on ch, then takes every one that arrives within
// window of it, so that the requests of a burst share one EC2 call. It returns
// false once ctx ends.
func gather[T any](ctx context.Context, ch <-chan T, window time.Duration) ([]T, bool) {
	var reqs []T
	select {
	case <-ctx.Done():
		return nil, false
	case r := <-ch:
		reqs = append(reqs, r)
	}
	deadline := time.After(window)
	for {
		select {
		case r := <-ch:
			reqs = append(reqs, r)
		case <-deadline:
			return reqs, true
		}
	}
}
