//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// TestPoolEndsAnIdleSpotWorkerWithANotice plays EC2's reclaim notice on the pool's
// idle spot worker: the pool ends it instead of offering it, records the reclaim
// (the breaker, set to open at one, shows on /metrics and sends the refill
// on-demand), and the next job, a spot job, gets the on-demand refill: a launch
// for it would be on-demand too.
func TestPoolEndsAnIdleSpotWorkerWithANotice(t *testing.T) {
	p := newPool(t, "pool-spot", 1, func(s *settings.Settings) {
		s.Instance.Market = settings.MarketSpot
		s.Instance.SpotInterruptionsLimit = 1
		s.Instance.SpotInterruptionsWindow = settings.Duration{Duration: time.Minute}
		s.Instance.SpotCooldown = settings.Duration{Duration: time.Hour}
		s.Pool.PrepullImages = nil
	})
	p.start()
	p.waitIdle(1)
	noticed := p.status().Idle[0]
	st.IMDS.NoticeSpot(noticed, "terminate", time.Now().Add(2*time.Minute))
	waitMetrics(t, p.metrics, `ec2x_pool_terminated_total{reason="spot_notice"} 1`,
		`ec2x_spot_breaker_open{instance_type="t3.micro",zone="us-east-1a"} 1`)
	if state, _ := instanceState(t, noticed); state != "terminated" && state != "shutting-down" {
		t.Errorf("the noticed worker %s is %s, want terminated", noticed, state)
	}
	p.waitIdle(1)
	refill := p.status().Idle[0]
	job := baseJob(8601)
	job.Script = []string{"echo after the notice"}
	res := p.job(job)
	contains(t, res.Log, "from the pool (ready for", "after the notice", "Job succeeded")
	if got := pooledWorker(t, res); got != refill {
		t.Errorf("the job got %s, want the on-demand refill %s (never the noticed %s)", got, refill, noticed)
	}
	p.note("fault", "EC2's spot reclaim notice on an idle pool worker", "the worker ended (spot_notice), never offered; the breaker opened on /metrics; the next spot job got the on-demand refill")
	p.finish()
}
