//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// reclaimingProxy gives the driver EC2's reason for a spot reclaim on terminated
// instances (moto has no spot market to reclaim from).
func reclaimingProxy(t *testing.T) *stack.Proxy {
	proxy := stack.NewProxy()
	t.Cleanup(proxy.Close)
	proxy.OnResponse(func(action string, body []byte) []byte {
		if action != "DescribeInstances" {
			return body
		}
		body = bytes.ReplaceAll(body, []byte("Client.UserInitiatedShutdown"), []byte("Server.SpotInstanceTermination"))
		return bytes.ReplaceAll(body, []byte("User initiated shutdown"), []byte("Spot instance termination"))
	})
	return proxy
}

// tickingJob prints the time every second for n seconds, so that the log shows when
// the driver's lines came; its `sleep <id>` is duringScript's marker.
func tickingJob(id, n int) runnersim.Job {
	job := baseJob(id)
	job.Script = []string{fmt.Sprintf("sleep %d & for i in $(seq %d); do echo tick $(date +%%s); sleep 1; done", id, n)}
	return job
}

// TestSpotReclaimIsAnnouncedAndItsRetryGoesOnDemand plays EC2's rebalance
// recommendation and two-minute notice on a spot worker under its job: the job log
// says both, the notice within 10 s, the reclaim fails
// the job as a system failure, and the job's retry (same pipeline and name, a job id
// of its own) launches on-demand and says why. The breaker, set to open at one
// reclaim, sends another job's spot launch on-demand, and closes after its cooldown.
func TestSpotReclaimIsAnnouncedAndItsRetryGoesOnDemand(t *testing.T) {
	proxy := reclaimingProxy(t)
	state := t.TempDir()
	cfg := settingsFile(t, "spot-notice.toml", proxy.URL, func(s *settings.Settings) {
		s.StateDir = state
		s.Instance.Market = settings.MarketSpot
		s.Instance.SpotInterruptionsLimit = 1
		s.Instance.SpotInterruptionsWindow = settings.Duration{Duration: time.Minute}
		s.Instance.SpotCooldown = settings.Duration{Duration: 45 * time.Second}
	})
	job := tickingJob(6101, 60)
	var noticed time.Time
	var instance string
	duringScript(t, "6101", "sleep 6101", func(id string) {
		instance, noticed = id, time.Now()
		st.IMDS.RecommendRebalance(id, noticed)
		st.IMDS.NoticeSpot(id, "terminate", noticed.Add(2*time.Minute))
		// The holder hands the notice over (<key>.spot); the run stage shows it
		// within a second; then EC2 takes the worker.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if m, _ := filepath.Glob(filepath.Join(state, "jobs", "*.spot")); len(m) > 0 {
				break
			}
		}
		time.Sleep(2 * time.Second)
		_ = st.TerminateInstance(t.Context(), id)
	})
	res := runJob(t, job, cfg)
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %q, want a system failure", res.FailureReason)
	}
	announce := "EC2 will reclaim spot worker " + instance + " at " + noticed.Add(2*time.Minute).UTC().Format(time.TimeOnly) + "Z"
	contains(t, res.Log, announce, "EC2 recommends rebalancing spot worker "+instance+": it is at elevated risk of being reclaimed",
		"EC2 reclaimed spot instance "+instance, "the retry launches on-demand")
	if shown := firstTickAfter(t, res.Log, announce); shown.Sub(noticed) > 10*time.Second {
		t.Errorf("the notice showed %s after EC2 gave it, want within 10 s", shown.Sub(noticed).Round(time.Second))
	}
	if st.IMDS.Reads(instance) == 0 {
		t.Error("the worker's metadata was never read")
	}
	record(t, "fault", "EC2's spot reclaim notice under `build_script`, then the reclaim", saw(res, "EC2 will reclaim spot worker i-… at …Z (spot instance action: terminate); …"))

	other := baseJob(6103) // another job while the breaker is open
	other.Script = []string{"echo breaker"}
	res = runJob(t, other, cfg)
	contains(t, res.Log, "Spot skipped for t3.micro in ", "EC2 reclaimed 1 of its spot workers within 1m0s", "(t3.micro, on-demand) running", "breaker")

	retry := baseJob(6102) // the retry: same pipeline and name
	retry.PipelineID = job.PipelineID
	retry.Script = []string{"echo retried"}
	res = runJob(t, retry, cfg)
	contains(t, res.Log, "An earlier attempt of this job (job 6101) lost spot worker "+instance+" when EC2 reclaimed it: this attempt launches on-demand",
		"(t3.micro, on-demand) running", "retried", "Job succeeded")
	record(t, "fault", "the retry of a job whose spot worker EC2 reclaimed", saw(res, "An earlier attempt of this job (job …) lost spot worker i-… when EC2 reclaimed it: this attempt launches on-demand"))

	// The cooldown counts from the reclaim's record, made when the holder read the
	// notice (within a poll of 5 s).
	time.Sleep(time.Until(noticed.Add(52 * time.Second)))
	after := baseJob(6104)
	after.Script = []string{"echo cooled down"}
	res = runJob(t, after, cfg)
	contains(t, res.Log, "(t3.micro, spot) running", "cooled down")
	if strings.Contains(res.Log, "Spot skipped") {
		t.Error("the breaker was still open after its cooldown")
	}
}

var tick = regexp.MustCompile(`(?m)^tick (\d+)$`)

// firstTickAfter is the time of the first tick the job printed after line.
func firstTickAfter(t *testing.T, log, line string) time.Time {
	t.Helper()
	at := strings.Index(log, line)
	m := tick.FindStringSubmatch(log[at:])
	if m == nil {
		t.Fatalf("no tick after %q", line)
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	return time.Unix(sec, 0)
}
