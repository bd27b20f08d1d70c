//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// saw summarizes a job's end for the reliability table: its status, failure reason
// and the message the test checked. The message is what the job's output showed,
// with "…" where ids, times and details were left out: one the output does not
// show (each "…" standing for any text within a line) is marked NOT SEEN, so the
// table never claims a line the run did not print, and the check against the
// committed table fails.
func saw(res runnersim.Result, message string) string {
	out := res.Status
	if res.FailureReason != "" {
		out += " (" + res.FailureReason + ")"
	}
	switch {
	case message == "":
	case !shown(res.Log+"\n"+res.RunnerLog, message):
		out += `: NOT SEEN in the job's output: "` + message + `"`
	default:
		out += `: "` + message + `"`
	}
	return out
}

// shown reports whether output has a line with message, each "…" in it standing for
// any text within the line.
func shown(output, message string) bool {
	parts := strings.Split(message, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `[^\n]*?`)).MatchString(output)
}

// failN answers the first n requests for action with an EC2 error.
func failN(n int32, action string, status int, code string) func(string, url.Values, http.ResponseWriter) bool {
	var left atomic.Int32
	left.Store(n)
	return func(a string, _ url.Values, w http.ResponseWriter) bool {
		if a != action || left.Add(-1) < 0 {
			return false
		}
		stack.EC2Error(w, status, code, code+" (injected by the fault proxy)")
		return true
	}
}

// duringScript runs fault on the job's instance, in the background, once its script
// runs the command marker (a process with that command line exists: the shared
// dockerd's containers and the private ones are all visible in this machine's /proc).
// A fixed delay after boot is not enough: on a busy machine it can land before the
// script starts, which tests another fault.
func duringScript(t *testing.T, jobID, marker string, fault func(id string)) {
	before := processesRunning(marker) // an earlier run's, not this job's
	go func() {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if !slices.ContainsFunc(processesRunning(marker), func(pid string) bool { return !slices.Contains(before, pid) }) {
				continue
			}
			insts, _ := st.InstancesByTag(t.Context(), "ec2-executor:job-id", jobID)
			for _, in := range insts {
				if _, ok := st.Boot.Booted(aws.ToString(in.InstanceId)); ok {
					fault(aws.ToString(in.InstanceId))
					return
				}
			}
		}
	}()
}

func TestFaultThrottlingIsRetriedWithBackoff(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.SetFault(failN(3, "DescribeInstances", http.StatusServiceUnavailable, "RequestLimitExceeded"))
	job := baseJob(6001)
	job.Script = []string{"echo survived throttling"}
	res := runJob(t, job, settingsFile(t, "throttle.toml", proxy.URL, nil))
	contains(t, res.Log, "survived throttling", "Job succeeded")
	record(t, "fault", "EC2 throttling: 3 × `RequestLimitExceeded` on DescribeInstances", saw(res, ""))
}

func TestFaultServerErrorIsRetried(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.SetFault(failN(1, "RunInstances", http.StatusInternalServerError, "InternalError"))
	job := baseJob(6002)
	job.Script = []string{"echo survived a 500"}
	res := runJob(t, job, settingsFile(t, "5xx.toml", proxy.URL, nil))
	contains(t, res.Log, "survived a 500", "Job succeeded")
	if n := proxy.Counts()["RunInstances"]; n != 2 {
		t.Errorf("RunInstances called %d times, want 2 (one retry)", n)
	}
	record(t, "fault", "EC2 HTTP 500 `InternalError` on RunInstances", saw(res, ""))
}

func TestFaultNoCapacityAnywhere(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.SetFault(failN(1000, "RunInstances", http.StatusInternalServerError, "InsufficientInstanceCapacity"))
	job := baseJob(6003)
	res := runJob(t, job, settingsFile(t, "nocap.toml", proxy.URL, func(s *settings.Settings) {
		s.Instance.SubnetIDs = []string{st.Seed.Subnet, st.Seed.Subnet2}
	}))
	msg := "no capacity for any choice"
	contains(t, res.Log, msg)
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %s", res.FailureReason)
	}
	record(t, "fault", "`InsufficientInstanceCapacity` for every type and subnet", saw(res, msg))
}

func TestFaultInstanceNeverRuns(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.OnResponse(func(action string, body []byte) []byte {
		if action != "DescribeInstances" {
			return body
		}
		body = bytes.ReplaceAll(body, []byte("<code>16</code>"), []byte("<code>0</code>"))
		return bytes.ReplaceAll(body, []byte("<name>running</name>"), []byte("<name>pending</name>"))
	})
	job := baseJob(6004)
	res := runJob(t, job, settingsFile(t, "pending.toml", proxy.URL, func(s *settings.Settings) {
		s.Instance.LaunchTimeout = settings.Duration{Duration: 2 * time.Second}
	}))
	msg := "to run: exceeded max wait time"
	contains(t, res.Log, msg, "after a failed launch")
	record(t, "fault", "instance never leaves `pending` (launch_timeout 2s)", saw(res, msg))
}

func TestFaultInstanceTerminatedUnderARunningJob(t *testing.T) {
	res, id := terminateDuringScript(t, 6005, "")
	contains(t, res.Log, "the worker is gone: instance "+id+" is terminated")
	record(t, "fault", "instance terminated underneath `build_script`", saw(res, "the worker is gone: instance i-… is terminated (…)"))
}

// TestFaultSpotInterruption terminates a spot worker under its job, with EC2's
// reason for a reclaim (moto has no spot market to reclaim from: the proxy gives the
// driver's DescribeInstances answers that reason).
func TestFaultSpotInterruption(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.OnResponse(func(action string, body []byte) []byte {
		if action != "DescribeInstances" {
			return body
		}
		body = bytes.ReplaceAll(body, []byte("Client.UserInitiatedShutdown"), []byte("Server.SpotInstanceTermination"))
		return bytes.ReplaceAll(body, []byte("User initiated shutdown"), []byte("Spot instance termination"))
	})
	cfg := settingsFile(t, "spot-interruption.toml", proxy.URL, func(s *settings.Settings) { s.Instance.Market = settings.MarketSpot })
	res, id := terminateDuringScript(t, 6017, cfg)
	msg := "the worker is gone: EC2 reclaimed spot instance " + id + " (Server.SpotInstanceTermination: Spot instance termination)"
	contains(t, res.Log, msg, "retry: when: runner_system_failure")
	record(t, "fault", "spot interruption underneath `build_script` (state reason `Server.SpotInstanceTermination`)",
		saw(res, "the worker is gone: EC2 reclaimed spot instance i-… (Server.SpotInstanceTermination: …)"))
}

// terminateDuringScript terminates the job's instance while its script runs and
// wants a system failure; it returns the result and the instance's id.
func terminateDuringScript(t *testing.T, jobID int, cfg string) (runnersim.Result, string) {
	t.Helper()
	marker := fmt.Sprintf("sleep %d", jobID)
	job := baseJob(jobID)
	job.Script = []string{"echo started", marker}
	var id atomic.Value
	id.Store("(never terminated)")
	duringScript(t, strconv.Itoa(jobID), marker, func(instance string) {
		id.Store(instance)
		_ = st.TerminateInstance(t.Context(), instance)
	})
	res := runJob(t, job, cfg)
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %s, want a system failure", res.FailureReason)
	}
	return res, id.Load().(string)
}

func TestFaultSSHNotUpYet(t *testing.T) {
	st.Boot.SetBootDelay(3 * time.Second)
	defer st.Boot.SetBootDelay(0)
	job := baseJob(6006)
	job.Script = []string{"echo waited for sshd"}
	res := runJob(t, job, "")
	contains(t, res.Log, "waited for sshd", "Job succeeded")
	record(t, "fault", "sshd starts 3 s after the instance runs", saw(res, ""))
}

func TestFaultWrongHostKey(t *testing.T) {
	st.Boot.SetWrongHostKey(true)
	defer st.Boot.SetWrongHostKey(false)
	job := baseJob(6007)
	res := runJob(t, job, "")
	msg := "worker presented an unexpected SSH host key"
	contains(t, res.Log, msg, "after a failed launch")
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %s", res.FailureReason)
	}
	record(t, "fault", "worker presents a host key other than the pinned one", saw(res, msg))
}

func TestFaultConnectionDroppedMidScript(t *testing.T) {
	job := baseJob(6008)
	job.Script = []string{"echo started", "sleep 608"}
	duringScript(t, "6008", "sleep 608", st.Boot.StopSSHD)
	res := runJob(t, job, "")
	msg := "running stage build_script on instance"
	contains(t, res.Log, msg)
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %s, want a system failure", res.FailureReason)
	}
	record(t, "fault", "the worker's sshd dies during `build_script`", saw(res, msg+" i-…: …"))
}

func TestFaultSIGKILLAfterTheGracefulTimeout(t *testing.T) {
	job := baseJob(6009)
	job.Script = []string{"echo started", "sleep 30"}
	job.Interrupt = runnersim.Interrupt{Stage: "build_script", After: 3 * time.Second}
	res := runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: st.SettingsFile, Env: stack.Env(),
		GracefulKillTimeout: time.Millisecond, PrepareRetryInterval: 200 * time.Millisecond})
	checkJob(t, res)
	killed := false
	for _, c := range res.Calls {
		killed = killed || c.Killed
	}
	if !killed || res.Status != "canceled" {
		t.Errorf("killed %v, status %s", killed, res.Status)
	}
	record(t, "fault", "cancel, then SIGKILL 1 ms after SIGTERM during `build_script`", saw(res, ""))
}

func TestFaultJobTimeout(t *testing.T) {
	job := baseJob(6010)
	job.Script = []string{"sleep 30"}
	job.Timeout = 8 * time.Second
	res := runJob(t, job, "")
	if res.FailureReason != "job_execution_timeout" {
		t.Errorf("got %s", res.FailureReason)
	}
	record(t, "fault", "job timeout during `build_script`", saw(res, ""))
}

func TestFaultPullFailure(t *testing.T) {
	job := baseJob(6011)
	job.Image = stack.RegistryAddr + "/ci/does-not-exist:1"
	res := runJob(t, job, "")
	msg := "manifest unknown"
	contains(t, res.Log, msg)
	record(t, "fault", "job image missing from the registry", saw(res, msg))
}

func TestBadInputs(t *testing.T) {
	cases := []struct {
		name, settingsTOML string
		settings           func(*settings.Settings)
		edit               func(*runnersim.Job)
		msg, reason        string
	}{
		{name: "settings: unknown key `[paint] colour`", settingsTOML: "\n[paint]\ncolour = \"blue\"\n", msg: "paint.colour: unknown key", reason: "runner_system_failure"},
		{name: "settings: table defined twice (`[ssh]`)", settingsTOML: "\n[ssh]\nport = 2222\n", msg: "Key 'ssh' has already been defined", reason: "runner_system_failure"},
		{name: "settings: impossible combination (`spot_max_price` with on-demand)", settings: func(s *settings.Settings) { s.Instance.SpotMaxPrice = "0.05" },
			msg: `instance.spot_max_price: is set but instance.market is "on-demand"`, reason: "runner_system_failure"},
		{name: "JOB_RESPONSE_FILE with a wrong type (`\"id\": {}`)", edit: func(j *runnersim.Job) {
			j.EditPayload = func(p map[string]any) { p["id"] = map[string]any{} }
		}, msg: "field id: wrong type (non-integer)", reason: "runner_system_failure"},
		{name: "settings: wrong type (`ssh.port = \"twenty-two\"`)", settings: func(s *settings.Settings) { s.SSH.Port = -2222 },
			msg: "ssh.port", reason: "runner_system_failure"},
		{name: "JOB_RESPONSE_FILE truncated", edit: func(j *runnersim.Job) {
			// Cut after a comma, never inside a string's \u escape (a syntax error, not a truncation).
			j.EditRaw = func(b []byte) []byte { return b[:bytes.LastIndexByte(b[:len(b)/2], ',')+1] }
		}, msg: "not a JSON object (truncated)", reason: "runner_system_failure"},
		{name: "image name that is not a reference", edit: func(j *runnersim.Job) { j.Image = "Not A Valid Image" },
			msg: `image "Not A Valid Image" is not a valid image reference`, reason: "script_failure"},
		{name: "service name that is not a reference", edit: func(j *runnersim.Job) {
			j.Services = []runnersim.Service{{Name: "bad::name"}}
		}, msg: `service "bad::name" is not a valid image reference`, reason: "script_failure"},
		{name: "malformed `DOCKER_AUTH_CONFIG` (next source used)", edit: func(j *runnersim.Job) {
			j.Variables = []runnersim.Variable{{Key: "DOCKER_AUTH_CONFIG", Value: `{"auths":{"x":`}}
			j.Script = []string{"true"}
		}, msg: "DOCKER_AUTH_CONFIG is not valid JSON", reason: ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxy := stack.NewProxy()
			defer proxy.Close()
			cfg := settingsFile(t, "bad-input.toml", proxy.URL, c.settings)
			if c.settingsTOML != "" {
				appendTo(t, cfg, c.settingsTOML)
			}
			if strings.Contains(c.name, "twenty-two") { // a string where TOML wants an integer
				replaceIn(t, cfg, "port = -2222", `port = "twenty-two"`)
			}
			job := baseJob(6100 + i)
			if c.edit != nil {
				c.edit(&job)
			}
			res := runJob(t, job, cfg)
			contains(t, res.Log, c.msg)
			if res.FailureReason != c.reason {
				t.Errorf("failure reason %q, want %q", res.FailureReason, c.reason)
			}
			if launched := proxy.Counts()["RunInstances"]; c.reason != "" && launched != 0 && !strings.Contains(c.name, "JOB_RESPONSE") {
				t.Errorf("%d instances launched for input refused before launch", launched)
			}
			record(t, "bad input", c.name, saw(res, c.msg))
		})
	}
}

// TestRunner175Shape drives a job the way gitlab-runner 17.5 does: no
// BUILD_EXIT_CODE_FILE, and services without variables in CUSTOM_ENV_CI_JOB_SERVICES
// (the payload still has them). A failing script is still a build failure, reported
// as exit code 1, and the service is still reached by its alias.
func TestRunner175Shape(t *testing.T) {
	job := baseJob(6016)
	job.Services = []runnersim.Service{{Name: stack.ServiceImage, Alias: "web", Variables: map[string]string{"SERVICE_OWN": "x"}}}
	job.Script = []string{"wget -q -O- http://web:8080/", "exit 7"}
	res := runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: st.SettingsFile, Env: stack.Env(),
		GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond, Runner175: true})
	checkJob(t, res)
	contains(t, res.Log, "service-ok")
	if res.FailureReason != "script_failure" || res.ExitCode != 1 {
		t.Errorf("got %s exit %d, want script_failure exit 1 (17.5 has no exit code file)", res.FailureReason, res.ExitCode)
	}
	record(t, "bad input", "a gitlab-runner 17.5 environment (no `BUILD_EXIT_CODE_FILE`, no service variables in `CI_JOB_SERVICES`), script exits 7", saw(res, "")+", exit code 1")
}

func TestBadStateFiles(t *testing.T) {
	cfg := settingsFile(t, "bad-state.toml", st.Endpoint(), func(s *settings.Settings) { s.StateDir = t.TempDir() })
	d := stageDriver{t: t, cfg: cfg}
	out, err := d.command("6200-0000cccc", "run", "/dev/null", "build_script").CombinedOutput()
	msg := "no job state for job 6200-0000cccc"
	if err == nil || !strings.Contains(string(out), msg) {
		t.Errorf("run without state: %v\n%s", err, out)
	}
	record(t, "bad input", "state file missing at `run`", "system failure: \""+msg+" (looked for …)\"")
}

func TestFaultDockerDaemonDiesDuringTheScript(t *testing.T) {
	cfg := settingsFile(t, "daemon-dies.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Worker.DaemonOptions = map[string]any{"max-concurrent-downloads": 2} // the worker gets its own dockerd
	})
	job := baseJob(6012)
	job.Script = []string{"echo started", "sleep 612"}
	duringScript(t, "6012", "sleep 612", func(id string) { st.Boot.StopDockerd(id) })
	res := runJob(t, job, cfg)
	msg := "running stage build_script on instance"
	contains(t, res.Log, "started", msg)
	if res.FailureReason != "runner_system_failure" {
		t.Errorf("got %s, want a system failure", res.FailureReason)
	}
	record(t, "fault", "the worker's Docker daemon dies during `build_script`", saw(res, msg+" i-…: …"))
}

func TestFaultJobContainerExitsBeforeReadingItsScript(t *testing.T) {
	job := baseJob(6013)
	job.ImageEntrypoint = []string{"/bin/sh", "-c", "exit 3"}
	job.Script = []string{"echo never runs"}
	res := runJob(t, job, "")
	if res.FailureReason != "script_failure" || res.ExitCode != 3 || strings.Contains(res.Log, "\nnever runs") {
		t.Errorf("got %s exit %d", res.FailureReason, res.ExitCode)
	}
	record(t, "fault", "the job container exits before reading its script (entrypoint `exit 3`)", saw(res, "")+", exit code 3")
}

func TestFaultTimeoutDuringPrepare(t *testing.T) {
	st.Boot.SetBootDelay(15 * time.Second)
	defer st.Boot.SetBootDelay(0)
	job := baseJob(6014)
	job.Timeout = 4 * time.Second
	res := runJob(t, job, "")
	if res.Status == "success" {
		t.Fatal("a job whose worker never answered succeeded")
	}
	contains(t, res.Log, "after a failed launch")
	record(t, "fault", "job timeout while prepare waits for the worker's sshd", saw(res, "")+", prepare terminated its instance")
}
