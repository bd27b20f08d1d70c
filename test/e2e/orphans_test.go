//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

const leftoverStopped = "The previous stage's script was still running after its driver stopped; stopped it"

// TestFaultDriverKilledMidStage kills a run stage's driver with SIGKILL (no shutdown
// of its own, as the OOM killer does) while its script sleeps, in the build container
// and in the helper container. The runner reads a system failure and calls the next
// stage in the same container, which must stop the orphaned script, say so and run at
// once instead of queueing behind it; nothing of the script may be left.
func TestFaultDriverKilledMidStage(t *testing.T) {
	for i, c := range []struct{ stage, next string }{
		{"build_script", "after_script"},
		{"restore_cache", "cleanup_file_variables"},
	} {
		t.Run(c.stage, func(t *testing.T) {
			id := 7200 + i
			sleep := fmt.Sprintf("sleep %d", id)
			job := baseJob(id)
			job.Timeout = 3 * time.Minute // without the fix, the next stage would wait for the sleep until then
			job.Script = []string{"echo started"}
			job.AfterScript = []string{"echo after_script ran"}
			job.CacheKey, job.CachePaths = "deps", []string{"vendor"}
			if c.stage == "build_script" {
				job.Script = append(job.Script, sleep)
			} else {
				job.Extra = map[string][]string{c.stage: {sleep}}
			}
			killDriverDuring(t, c.stage, sleep)
			res := runJob(t, job, "")
			if res.FailureReason != "runner_system_failure" {
				t.Errorf("job ended %s (%s), want a system failure", res.Status, res.FailureReason)
			}
			contains(t, res.Log, leftoverStopped)
			next := slices.IndexFunc(res.Calls, func(call runnersim.Call) bool { return call.Stage == c.next })
			if next < 0 {
				t.Fatalf("stage %s never ran: %+v", c.next, res.Calls)
			}
			if d := res.Calls[next].Duration; d > 15*time.Second || res.Calls[next].ExitCode != 0 {
				t.Errorf("%s took %s (exit %d), want it done within seconds", c.next, d, res.Calls[next].ExitCode)
			}
			if pids := processesRunning(sleep); len(pids) > 0 {
				t.Errorf("the orphaned %q still runs: pids %v", sleep, pids)
			}
			for _, key := range res.JobKeys {
				assertNoJobContainers(t, key)
			}
			record(t, "fault", fmt.Sprintf("the driver of `%s` killed with SIGKILL while its script runs", c.stage),
				saw(res, leftoverStopped)+fmt.Sprintf(" by `%s`", c.next))
		})
	}
}

// killDriverDuring sends SIGKILL to the driver process of stage, alone, once the
// stage's script runs marker.
func killDriverDuring(t *testing.T, stage, marker string) {
	before := processesRunning(marker)
	go func() {
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if !slices.ContainsFunc(processesRunning(marker), func(pid string) bool { return !slices.Contains(before, pid) }) {
				continue
			}
			for _, pid := range processesRunning(binary + " run ") {
				if driverStage(pid) == stage {
					n, _ := strconv.Atoi(pid)
					_ = syscall.Kill(n, syscall.SIGKILL)
					return
				}
			}
		}
	}()
}

// driverStage is the stage a `run` driver process serves (its last argument).
func driverStage(pid string) string {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return args[len(args)-1]
}

// TestDuplicateLaunchIsIdempotentOrCleanedUp loses moto's answer to the first
// RunInstances, so the SDK retries it with the same client token. With the stack's
// proxy honouring the token as EC2 does, one instance is launched; with it
// deliberately ignoring the token (moto's own behaviour), two are, and cleanup must
// still leave none running.
func TestDuplicateLaunchIsIdempotentOrCleanedUp(t *testing.T) {
	for i, honour := range []bool{true, false} {
		name := map[bool]string{true: "token honoured", false: "token ignored"}[honour]
		t.Run(name, func(t *testing.T) {
			proxy := stack.NewProxy()
			defer proxy.Close()
			proxy.IgnoreClientTokens(!honour)
			proxy.DropAnswers("RunInstances", 1)
			job := baseJob(7210 + i)
			job.Script = []string{"echo ran after a lost answer"}
			res := runJob(t, job, settingsFile(t, "lost-answer.toml", proxy.URL, nil))
			contains(t, res.Log, "ran after a lost answer", "Job succeeded")
			if n := proxy.Counts()["RunInstances"]; n != 2 {
				t.Errorf("RunInstances sent %d times, want 2 (the SDK's retry)", n)
			}
			launched, err := st.InstancesByTag(t.Context(), "ec2-executor:job-id", strconv.Itoa(job.ID))
			if err != nil {
				t.Fatal(err)
			}
			want := map[bool]int{true: 1, false: 2}[honour]
			if len(launched) != want {
				t.Errorf("%d instances launched for the job, want %d", len(launched), want)
			}
			if !honour {
				contains(t, res.RunnerLog, "Found more than one instance tagged with this job; terminating all of them")
			}
			record(t, "fault", "RunInstances answer lost, SDK retries with the same client token ("+name+")",
				saw(res, "")+fmt.Sprintf(", %d instance(s) launched", len(launched)))
		})
	}
}

// TestTwentyJobsAtOnceLeaveNothing runs 20 jobs at once through the runner simulator:
// every job succeeds on its own worker, and no instance is left running.
func TestTwentyJobsAtOnceLeaveNothing(t *testing.T) {
	const n = 20
	results := make([]runnersim.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := baseJob(7300 + i)
			job.Script = []string{"echo concurrent job " + strconv.Itoa(i)}
			results[i] = runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: st.SettingsFile,
				Env: stack.Env(), GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond})
		}()
	}
	wg.Wait()
	workers, attempts := map[string]int{}, 0
	for i, res := range results {
		if res.Status != "success" {
			t.Errorf("job %d: %s (%s)\n%s", i, res.Status, res.FailureReason, res.Log)
		}
		insts, err := st.InstancesByTag(t.Context(), "ec2-executor:job-id", strconv.Itoa(7300+i))
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			workers[*in.InstanceId]++
		}
		attempts += res.PrepareAttempts
		if len(insts) != res.PrepareAttempts {
			t.Errorf("job %d launched %d instances in %d prepare attempts, want one each:\n%s", i, len(insts), res.PrepareAttempts, res.Log)
		} else if res.PrepareAttempts > 1 {
			t.Logf("job %d needed %d prepare attempts under load:\n%s", i, res.PrepareAttempts, res.Log)
		}
	}
	assertNoneRunning(t)
	record(t, "fault", "20 jobs at once", fmt.Sprintf("%d of %d succeeded, one instance per prepare attempt", countSuccess(results), n))
}

func countSuccess(results []runnersim.Result) int {
	n := 0
	for _, r := range results {
		if r.Status == "success" {
			n++
		}
	}
	return n
}
