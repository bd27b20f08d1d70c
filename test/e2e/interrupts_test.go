//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
)

// interruptedStages are the stages a cancel or the job timeout can land in, in the
// runner's order. build_script is covered on its own (TestCancelledJob…,
// TestFaultJobTimeout, TestFaultSIGKILLAfterTheGracefulTimeout), and so is the
// timeout during prepare (TestFaultTimeoutDuringPrepare).
var interruptedStages = []string{"prepare", "prepare_script", "get_sources", "restore_cache",
	"after_script", "archive_cache", "upload_artifacts_on_success", "cleanup_file_variables"}

// TestFaultInterruptInEveryStage cancels the job, or lets its timeout expire, while
// each stage waits in a sleep. The stage's driver must stop the sleep and exit soon
// after SIGTERM, no later stage may run, and cleanup must leave neither a container
// nor an instance.
func TestFaultInterruptInEveryStage(t *testing.T) {
	for i, stage := range interruptedStages {
		for _, timeout := range []bool{false, true} {
			if stage == "prepare" && timeout {
				continue
			}
			what := "cancel"
			if timeout {
				what = "job timeout"
			}
			t.Run(what+" in "+stage, func(t *testing.T) {
				res := interruptJob(t, 7000+2*i+boolInt(timeout), stage, timeout)
				record(t, "fault", fmt.Sprintf("%s during `%s`", what, stage), saw(res, "")+", only `cleanup` ran after it")
			})
		}
	}
}

// interruptJob runs a job whose stage sleeps and is interrupted 2 s into it, and
// checks how the driver and the job ended.
func interruptJob(t *testing.T, id int, stage string, timeout bool) runnersim.Result {
	sleep := fmt.Sprintf("sleep %d", id)
	job := baseJob(id)
	job.Script = []string{"mkdir -p vendor out"}
	job.AfterScript = []string{"echo after"}
	job.CacheKey, job.CachePaths, job.Artifacts = "deps", []string{"vendor"}, []string{"out"}
	job.Extra = map[string][]string{stage: {sleep}}
	job.Interrupt = runnersim.Interrupt{Stage: stage, After: 2 * time.Second, Timeout: timeout}
	if stage == "prepare" {
		st.Boot.SetBootDelay(10 * time.Second)
		defer st.Boot.SetBootDelay(0)
	}
	res := runJob(t, job, "")
	want := "canceled"
	if timeout {
		want = "failed job_execution_timeout"
	}
	if got := (res.Status + " " + res.FailureReason); got != want && got != want+" " {
		t.Errorf("job ended %q, want %q", got, want)
	}
	checkInterruptedCall(t, res, stage)
	if stage == "prepare" {
		contains(t, res.Log, "after a failed launch") // prepare terminated its own instance
	} else {
		contains(t, res.Log, "Stage "+stage+" cancelled: the script's processes were stopped")
	}
	if pids := processesRunning(sleep); len(pids) > 0 {
		t.Errorf("the stage's %q survived the interrupt: pids %v", sleep, pids)
	}
	for _, key := range res.JobKeys {
		assertNoJobContainers(t, key)
	}
	return res
}

// checkInterruptedCall wants the interrupted stage's driver signalled, gone within
// 5 s without SIGKILL, and followed by nothing but cleanup.
func checkInterruptedCall(t *testing.T, res runnersim.Result, stage string) {
	t.Helper()
	i := slices.IndexFunc(res.Calls, func(c runnersim.Call) bool { return c.Stage == stage })
	if i < 0 {
		t.Fatalf("stage %s never ran: %+v", stage, res.Calls)
	}
	if c := res.Calls[i]; !c.Signalled || c.Killed || c.AfterSignal > 5*time.Second {
		t.Errorf("%s after SIGTERM: signalled %v, killed %v, exited after %s (want within 5s without SIGKILL)",
			stage, c.Signalled, c.Killed, c.AfterSignal)
	}
	for _, c := range res.Calls[i+1:] {
		if c.Stage != "cleanup" {
			t.Errorf("stage %s ran after the interrupt in %s", c.Stage, stage)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
