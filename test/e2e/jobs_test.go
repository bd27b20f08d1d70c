//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

func TestPassingJobRunsEveryStageOnAWorkerLaunchedWithTheSettings(t *testing.T) {
	job := baseJob(2001)
	job.Script = []string{"echo hello from $CI_JOB_ID", "echo built > result.txt", "cat result.txt"}
	job.AfterScript = []string{"echo after_script status=$CI_JOB_STATUS"}
	res := runJob(t, job, "")
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "hello from 2001", "\nbuilt\n", "after_script status=success", "Job succeeded")
	assertStages(t, res, "config prepare prepare_script get_sources build_script after_script cleanup_file_variables cleanup")
	insts, err := st.InstancesByTag(t.Context(), "ec2-executor:job-key", res.JobKeys[0])
	if err != nil || len(insts) != 1 {
		t.Fatalf("want exactly one instance for the job, got %d (%v)", len(insts), err)
	}
	in, ok := st.Boot.Booted(aws.ToString(insts[0].InstanceId))
	if !ok {
		t.Fatal("the instance never booted")
	}
	checkLaunchOptions(t, in)
	if entries, _ := os.ReadDir(filepath.Join(st.Dir, "state", "jobs")); len(entries) != 0 {
		t.Errorf("cleanup left state files: %v", entries)
	}
	// What the worker cost: the on-demand price of t3.micro in the stack's region.
	contains(t, res.RunnerLog, "The job's worker, t3.micro on-demand in us-east-1", ": about $0.00", "($0.0104 an hour, on-demand price list)")
	out, err := exec.Command(binary, "--config", st.SettingsFile, "costs", "--since", "1h").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^group/demo +2301 +1 `).Match(out) {
		t.Errorf("costs --since 1h: %v\n%s", err, out)
	}
}

func checkLaunchOptions(t *testing.T, in types.Instance) {
	t.Helper()
	d := stack.Describe(in)
	for _, want := range []string{"type=t3.micro", "subnet=" + st.Seed.Subnet, st.Seed.SecurityGroup,
		"instance-profile/" + st.Seed.InstanceProfile, "http_tokens=required hop_limit=1", "managed-by=ec2-executor",
		"ec2-executor:job-id=2001", "ec2-executor:project-id=7", "ec2-executor:pipeline-id=2301", "ec2-executor:manager=stack",
		"ec2-executor:created-at=", "environment=local-stack", `public_ip=""`} {
		if !strings.Contains(d, want) {
			t.Errorf("launched instance lacks %q:\n%s", want, d)
		}
	}
}

func TestFailingScriptIsABuildFailureAndLaterStagesStillRun(t *testing.T) {
	job := baseJob(2002)
	job.Script = []string{"echo before the failure", "exit 7", "echo never printed"}
	job.AfterScript = []string{"echo after_script status=$CI_JOB_STATUS"}
	res := runJob(t, job, "")
	if res.Status != "failed" || res.FailureReason != "script_failure" || res.ExitCode != 7 {
		t.Fatalf("got %s/%s exit %d, want failed/script_failure exit 7", res.Status, res.FailureReason, res.ExitCode)
	}
	contains(t, res.Log, "before the failure", "after_script status=failed", "ERROR: Job failed: exit code 7")
	if strings.Contains(res.Log, "never printed") {
		t.Error("the script went on after exit 7")
	}
	last := res.Calls[len(res.Calls)-2]
	if last.Stage != "cleanup_file_variables" || last.ExitCode != 0 {
		t.Errorf("cleanup_file_variables did not run after the failure: %+v", last)
	}
}

func TestCancelledJobStopsTheScriptAndTerminatesTheWorker(t *testing.T) {
	job := baseJob(2003)
	job.Script = []string{"echo started", "sleep 313"}
	job.AfterScript = []string{"echo after_script status=$CI_JOB_STATUS"}
	job.Interrupt = runnersim.Interrupt{Stage: "build_script", After: 3 * time.Second}
	res := runJob(t, job, "")
	if res.Status != "canceled" {
		t.Fatalf("status %s (%s), want canceled", res.Status, res.FailureReason)
	}
	for _, c := range res.Calls {
		if c.Stage != "build_script" {
			continue
		}
		if !c.Signalled || c.Killed || c.AfterSignal > 5*time.Second {
			t.Errorf("build_script after SIGTERM: %+v (want exit within 5s without SIGKILL)", c)
		}
	}
	contains(t, res.Log, "started", "after_script status=canceled")
	if pids := processesRunning("sleep 313"); len(pids) > 0 {
		t.Errorf("the script's process survived the cancel: pids %v", pids)
	}
	assertNoJobContainers(t, res.JobKeys[0])
}

func TestPrepareFailingAfterLaunchTerminatesEveryAttemptsInstance(t *testing.T) {
	job := baseJob(2004)
	job.Image = stack.RegistryAddr + "/ci/does-not-exist:1"
	job.Script = []string{"echo unreachable"}
	res := runJob(t, job, "")
	if res.Status != "failed" || res.FailureReason != "runner_system_failure" || res.PrepareAttempts != 3 {
		t.Fatalf("got %s/%s after %d attempts, want a system failure after 3", res.Status, res.FailureReason, res.PrepareAttempts)
	}
	contains(t, res.Log, "pulling 127.0.0.1:5000/ci/does-not-exist:1", "after a failed launch")
	if strings.Contains(res.RunnerLog, "Could not reach the worker") {
		t.Error("cleanup tried to reach a worker prepare had already terminated")
	}
	insts, err := st.InstancesByTag(t.Context(), "ec2-executor:job-id", "2004")
	if err != nil || len(insts) != 3 {
		t.Fatalf("want one instance per attempt (3), got %d (%v)", len(insts), err)
	}
}

func TestConfigWithABrokenSettingsFileFailsBeforeAnyEC2Call(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	settings := settingsFile(t, "broken.toml", proxy.URL, nil)
	appendTo(t, settings, "\n[paint]\ncolour = \"blue\"\n")
	job := baseJob(2005)
	job.Script = []string{"echo unreachable"}
	res := runJob(t, job, settings)
	if res.FailureReason != "runner_system_failure" {
		t.Fatalf("got %s/%s, want a system failure", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "paint.colour: unknown key")
	for _, c := range res.Calls {
		if c.Stage == "config" && c.ExitCode != 2 {
			t.Errorf("config exited %d, want 2 (system failure)", c.ExitCode)
		}
		if c.Stage == "prepare" {
			t.Error("prepare ran although config failed")
		}
	}
	if counts := proxy.Counts(); len(counts) != 0 {
		t.Errorf("EC2 was called: %v", counts)
	}
}

// processesRunning scans /proc for command lines containing s (container processes
// are visible in the host's PID namespace).
func processesRunning(s string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// assertNoJobContainers fails when a job's containers outlived its cleanup, whether
// still on the shared dockerd or wiped by the stack when the worker went away.
func assertNoJobContainers(t *testing.T, key string) {
	t.Helper()
	if left := append(jobContainers(t, key), st.Boot.LeftBehind(key)...); len(left) != 0 {
		t.Errorf("left on the worker after cleanup: %v", left)
	}
}
