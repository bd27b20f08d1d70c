package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/workers"
)

// readyState is what a worker that just got ready becomes: idle while the pool has
// fewer than idle_count, then stopped while it has fewer than stopped_count, then
// idle again (trimmed by idle_time). Called with the lock held.
func (p *Pool) readyState() string {
	idleWant, stoppedWant, _ := p.size()
	n := p.book.count()
	if n[workers.PoolIdle] >= idleWant && n[workers.PoolStopped] < stoppedWant {
		return workers.PoolStopped
	}
	return workers.PoolIdle
}

// stop stops workers the records already say are stopped (so a pool killed before
// the call repeats it) and tags them.
func (p *Pool) stop(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := p.ec2.Stop(ctx, ids); err != nil {
		p.log.Warn("Stopping pool workers", "error", err)
		return
	}
	if err := p.ec2.Tag(ctx, ids, map[string]string{workers.TagPoolState: workers.PoolStopped}); err != nil {
		p.log.Warn("Tagging stopped pool workers", "error", err)
	}
	p.log.Info("Stopped ready pool workers", "count", len(ids))
}

// starter starts stopped workers for claims, one StartInstances call for the claims
// that arrive within 100 ms of each other.
func (p *Pool) starter(ctx context.Context) {
	batchByID(ctx, p.starts, 100*time.Millisecond, func(ctx context.Context, ids []string) map[string]error {
		err := p.ec2.StartStopped(ctx, ids)
		res := make(map[string]error, len(ids))
		for _, id := range ids {
			res[id] = err
		}
		return res
	})
}

// claimStopped starts the stopped worker a claim took, waits until EC2 reports it
// running (the loop polls every second while a worker starts) and its sshd answers
// with the pinned key, then hands it to the job. A worker that does not come back
// within pool.claim_timeout is terminated, and the job launches cold.
func (p *Pool) claimStopped(ctx context.Context, w Record) (decision, string) {
	start := p.now()
	err := p.askStart(ctx, w.Lease.InstanceID)
	p.kick()
	lease := w.Lease
	if err == nil {
		lease, err = p.awaitRunning(ctx, w.Key)
	}
	if err == nil {
		err = p.reachable(ctx, lease)
	}
	if err != nil {
		p.drop(w.Key, "it did not start")
		p.terminate(context.WithoutCancel(ctx), w.Lease.InstanceID, ReasonBoot, "the stopped worker did not start: "+err.Error())
		return decision{ClaimAnswer: workers.ClaimAnswer{Miss: "the stopped worker " + w.Lease.InstanceID + " did not start: " + err.Error()}}, ClaimCold
	}
	p.mu.Lock()
	if rec := p.book.Workers[w.Key]; rec != nil {
		rec.State, rec.Since, rec.Lease = workers.PoolClaimed, p.now(), lease
	}
	delete(p.running, w.Key)
	p.saveLocked()
	p.broadcastLocked()
	p.mu.Unlock()
	lease.Source = workers.SourcePool
	return decision{ClaimAnswer: workers.ClaimAnswer{Lease: &lease, ReadySince: w.Since, StartedIn: p.now().Sub(start)}}, ClaimStarted
}

// askStart asks the starter to start the worker and waits for its answer, or for the
// pool's shutdown.
func (p *Pool) askStart(ctx context.Context, id string) error {
	err := askByID(ctx, p.starts, id)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("the pool is shutting down: %w", err)
	}
	return err
}

// awaitRunning waits until the loop has seen the worker running again, with the
// address it came back on.
func (p *Pool) awaitRunning(ctx context.Context, key string) (workers.Lease, error) {
	deadline := time.After(p.s.Pool.ClaimTimeout.Duration)
	for {
		p.mu.Lock()
		rec, changed := p.book.Workers[key], p.changed
		running := rec != nil && p.running[key]
		p.mu.Unlock()
		switch {
		case rec == nil:
			return workers.Lease{}, fmt.Errorf("it is gone")
		case running:
			return rec.Lease, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return workers.Lease{}, fmt.Errorf("EC2 did not report it running within pool.claim_timeout (%s)", p.s.Pool.ClaimTimeout.Duration)
		case <-ctx.Done():
			return workers.Lease{}, ctx.Err()
		}
	}
}

// reachable checks the worker's sshd answers with its pinned host key, and Docker.
func (p *Pool) reachable(ctx context.Context, l workers.Lease) error {
	eng, err := p.fleet.Check(ctx, l)
	if err != nil {
		return err
	}
	return eng.Close()
}
