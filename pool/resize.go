package pool

import (
	"context"
	"time"

	"github.com/ec2-executor/ec2-executor/workers"
)

// resize brings the pool to its current size (the schedule's, or the [pool]
// section's) without touching a claimed worker. Idle workers beyond the idle count
// are stopped while the stopped pool is short, and the rest, those ready longest
// first, end once they waited idle_time. Stopped workers beyond the stopped count
// are started while the idle pool is short (they are checked again, then offered),
// and the rest are terminated.
func (p *Pool) resize(ctx context.Context) {
	idleWant, stoppedWant, idleTime := p.size()
	p.mu.Lock()
	arch := p.s.Instance.Arch()
	idle, stopped := p.inState(workers.PoolIdle, arch), p.inState(workers.PoolStopped, arch)
	ends := p.trimOtherArch(idleTime)
	var stops, starts []string
	now := p.now()
	for _, w := range idle[:max(len(idle)-idleWant, 0)] {
		switch {
		case len(stopped)+len(stops) < stoppedWant:
			w.State, w.Since = workers.PoolStopped, now
			stops = append(stops, w.Lease.InstanceID)
		case now.Sub(w.Since) >= idleTime:
			ends = append(ends, ending{w.Lease.InstanceID, ReasonIdle, "idle longer than pool.idle_time"})
			delete(p.book.Workers, w.Key)
		}
	}
	for _, w := range stopped[:max(len(stopped)-stoppedWant, 0)] {
		if len(idle)+len(starts) < idleWant {
			w.State, w.Since = workers.PoolBooting, now
			starts = append(starts, w.Lease.InstanceID)
			continue
		}
		ends = append(ends, ending{w.Lease.InstanceID, ReasonIdle, "more stopped workers than the pool wants now"})
		delete(p.book.Workers, w.Key)
	}
	p.saveLocked()
	p.mu.Unlock()
	p.stop(ctx, stops)
	if err := p.ec2.StartStopped(ctx, starts); err != nil {
		p.log.Warn("Starting stopped pool workers", "error", err)
	}
	for _, e := range ends {
		p.terminate(ctx, e.id, e.reason, e.why)
	}
}

// trimOtherArch ends the idle workers of the other architecture beyond its
// [pool.<arch>] idle count (none without one: those a job gave back) once they
// waited idle_time. Called with the lock held.
func (p *Pool) trimOtherArch(idleTime time.Duration) []ending {
	other := p.s.Instance.OtherArch()
	idle := p.inState(workers.PoolIdle, other)
	var ends []ending
	for _, w := range idle[:max(len(idle)-p.s.Pool.ArchIdle(other), 0)] {
		if p.now().Sub(w.Since) >= idleTime {
			ends = append(ends, ending{w.Lease.InstanceID, ReasonIdle, "idle longer than pool.idle_time"})
			delete(p.book.Workers, w.Key)
		}
	}
	return ends
}

// inState lists the workers of arch in state, those in it longest first. Called
// with the lock held.
func (p *Pool) inState(state, arch string) []*Record {
	var out []*Record
	for _, w := range p.book.Workers {
		if w.State == state && p.archOf(w) == arch {
			out = append(out, w)
		}
	}
	sortBySince(out)
	return out
}

// size is how many idle and stopped workers the pool wants now, and how long an
// idle one beyond them may wait: the schedule's sizes, the idle count raised by
// pool.scale_factor for the workers in use.
func (p *Pool) size() (idle, stopped int, idleTime time.Duration) {
	now := p.now()
	_, stopped, idleTime = p.s.Pool.PoolSize(now)
	idle = p.s.Pool.IdleWanted(now, int(p.inUse.Load()))
	p.m.idleDesired.Set(float64(idle))
	p.m.idleByArch.WithLabelValues(p.s.Instance.Arch(), "desired").Set(float64(idle))
	other := p.s.Instance.OtherArch()
	p.m.idleByArch.WithLabelValues(other, "desired").Set(float64(p.s.Pool.ArchIdle(other)))
	return idle, stopped, idleTime
}
