//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
)

// burstOf runs n jobs through the runner simulator at once on the pool's job
// settings and returns their results, in order.
func (p *poolSetup) burstOf(n, firstID int) []runnersim.Result {
	results := make([]runnersim.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			job := baseJob(firstID + i)
			job.Script = []string{"echo burst job"}
			results[i] = p.job(job)
		})
	}
	wg.Wait()
	return results
}

var launchedForJob = regexp.MustCompile(`Using worker (i-[0-9a-f]+), launched by the pool for this job in one RunInstances call with (\d+) other`)

// With no idle worker, a burst of jobs gets workers the pool launches for them:
// fewer RunInstances calls than jobs, none by the jobs themselves, every worker its
// own job's, and each job log says how its worker was launched.
func TestPoolLaunchesForABurstOfJobsInFewCalls(t *testing.T) {
	const n = 8
	p := newPool(t, "launch-burst", 0, func(s *settings.Settings) {
		s.Pool.PrepullImages = nil
		s.Pool.IdleTime = settings.Duration{Duration: 2 * time.Second}
	})
	p.start()
	waitMetrics(t, p.metrics, "ec2x_pool_idle_desired 0")
	results := p.burstOf(n, 8700)
	var ids []string
	for i, res := range results {
		m := launchedForJob.FindStringSubmatch(res.Log)
		if res.Status != "success" || m == nil {
			t.Errorf("job %d: %s (%s), launched by the pool: %v", i, res.Status, res.FailureReason, m != nil)
			continue
		}
		ids = append(ids, m[1])
		if calls := p.prepareCalls(res); len(calls) != 0 {
			t.Errorf("job %d's prepare made EC2 calls of its own: %v", i, calls)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(ids) {
		t.Errorf("a worker served two jobs: %v", ids)
	}
	runs := p.poolProxy.Counts()["RunInstances"]
	if runs == 0 || runs > n/2 {
		t.Errorf("the pool made %d RunInstances calls for %d jobs, want at least 1 and at most %d", runs, n, n/2)
	}
	waitMetrics(t, p.metrics, fmt.Sprintf(`ec2x_pool_claims_total{result="launched_for_job"} %d`, n))
	p.finish()
}

// A pool killed as EC2 answers the RunInstances call it made for waiting jobs:
// each job launches its own worker and says why; the restarted pool adopts the
// workers it launched (their records and keys were saved before the call), offers
// none of them to the jobs that left, and trims them once idle.
func TestPoolKilledBetweenRunInstancesAndItsAnswerToTheJobs(t *testing.T) {
	const n = 3
	p := newPool(t, "launch-kill", 0, func(s *settings.Settings) {
		s.Pool.PrepullImages = nil
		s.Pool.IdleTime = settings.Duration{Duration: 2 * time.Second}
	})
	var once sync.Once
	p.poolProxy.OnAnswered(func(action string) {
		if action == "RunInstances" {
			once.Do(func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
		}
	})
	p.start()
	waitMetrics(t, p.metrics, "ec2x_pool_idle_desired 0")
	results := p.burstOf(n, 8710)
	p.poolProxy.OnAnswered(nil)
	wentAway := 0
	for _, res := range results {
		contains(t, res.Log, "The warm pool did not answer on "+p.socket, "launching a fresh worker", "Job succeeded")
		if strings.Contains(res.Log, "it went away while no idle or stopped worker fits; the pool launches one for this job") {
			wentAway++
		}
	}
	if wentAway == 0 {
		t.Error("no job says the pool went away while it launched for it")
	}
	adopted := poolInstances(t) // the jobs' own workers are gone with their cleanup
	if adopted == 0 {
		t.Fatal("the killed RunInstances call launched nothing")
	}
	p.start()
	waitMetrics(t, p.metrics, fmt.Sprintf(`ec2x_pool_terminated_total{reason="idle_time"} %d`, adopted),
		`ec2x_pool_workers{state="claimed"} 0`, `ec2x_pool_workers{state="booting"} 0`)
	p.note("fault", "pool SIGKILLed as RunInstances answers the launch it made for 3 waiting jobs, restarted",
		saw(results[0], "")+"; each job launched its own (\"The warm pool did not answer on …; launching a fresh worker\"); the call's workers adopted, handed to no job, trimmed when idle")
	p.finish()
}
