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

// idReq asks a batcher to act on one worker, by instance id.
type idReq struct {
	id   string
	done chan error // buffered: the batcher never waits for the asker
}

// batchByID serves ch until ctx ends: the requests gathered within window share
// one call, and each is answered with its own id's result.
func batchByID(ctx context.Context, ch <-chan idReq, window time.Duration, call func(context.Context, []string) map[string]error) {
	for {
		reqs, ok := gather(ctx, ch, window)
		if !ok {
			return
		}
		ids := make([]string, len(reqs))
		for i, r := range reqs {
			ids[i] = r.id
		}
		res := call(ctx, ids)
		for _, r := range reqs {
			r.done <- res[r.id]
		}
	}
}

// askByID hands id to a batcher and waits for its result, or for ctx: the batcher
// stops with Run's context, and an asker must not keep Run from returning.
func askByID(ctx context.Context, ch chan<- idReq, id string) error {
	r := idReq{id: id, done: make(chan error, 1)}
	select {
	case ch <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
