package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/workers"
)

// endGather is how long the ender waits after a release for others to join its
// TerminateInstances call: the cleanups of a burst end together.
const endGather = 100 * time.Millisecond

// ender terminates the workers of finished jobs, one TerminateInstances call for
// the releases that arrive within endGather of each other.
func (p *Pool) ender(ctx context.Context) {
	batchByID(ctx, p.ends, endGather, p.ec2.TerminateAll)
}

// endFor terminates the worker under key, whose job released it, through the
// ender. Its record says "ending" until EC2 confirmed; a termination that fails,
// or a pool killed before it answers, leaves the worker to the job's cleanup.
func (p *Pool) endFor(ctx context.Context, key, why string) workers.ReleaseAnswer {
	p.mu.Lock()
	rec := p.book.Workers[key]
	if rec == nil {
		p.mu.Unlock()
		return workers.ReleaseAnswer{Why: why + ", and the pool no longer holds it"}
	}
	id := rec.Lease.InstanceID
	rec.State = workers.PoolEnding
	p.saveLocked()
	p.mu.Unlock()
	err := askByID(ctx, p.ends, id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if w := p.book.Workers[key]; w != nil {
			w.State = workers.PoolClaimed // the job's cleanup terminates it
			p.saveLocked()
		}
		return workers.ReleaseAnswer{Why: fmt.Sprintf("%s, and the pool could not terminate it: %v", why, err)}
	}
	delete(p.book.Workers, key)
	p.saveLocked()
	p.m.terminated.WithLabelValues(ReasonJobDone).Inc()
	return workers.ReleaseAnswer{Ended: true, Why: why}
}
