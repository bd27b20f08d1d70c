package pool

import (
	"context"
	"time"
)

// heartbeat renews this manager's heartbeat every reap.heartbeat_interval and, every
// reap.interval, terminates the workers of managers whose heartbeat went stale, so a
// manager that dies leaves nothing running for longer than reap.manager_timeout.
func (p *Pool) heartbeat(ctx context.Context) {
	beat := time.NewTicker(p.s.Reap.HeartbeatInterval.Duration)
	defer beat.Stop()
	reap := time.NewTicker(p.s.Reap.Interval.Duration)
	defer reap.Stop()
	p.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			p.beat(ctx)
		case <-reap.C:
			done, err := p.fleet.ReapDeadManagers(ctx, false)
			p.fleet.LogReaped(done)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("Reaping the workers of managers that stopped", "error", err)
			}
		}
	}
}

func (p *Pool) beat(ctx context.Context) {
	if err := p.fleet.Beat(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("Renewing this manager's heartbeat", "error", err)
	}
}
