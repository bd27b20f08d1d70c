//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// These tests run jobs through a real gitlab-runner 17.5.0 (`run-single`, custom
// executor) against the stand-in jobs API, the ground truth for the contract the
// runner simulator approximates. `make e2e` builds the runner when it is missing
// (../shared/tools/gitlab-runner/build.sh); a runner that is not there fails them.

// realRunner is the gitlab-runner binary: EC2X_GITLAB_RUNNER, else where build.sh puts it.
func realRunner(t *testing.T) string {
	t.Helper()
	p := os.Getenv("EC2X_GITLAB_RUNNER")
	if p == "" {
		p = "/usr/local/bin/gitlab-runner"
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil || !strings.Contains(string(out), "17.5.0") {
		t.Fatalf("no gitlab-runner 17.5.0 at %s (make gitlab-runner builds it): %v %s", p, err, out)
	}
	return p
}

const runnerConfig = `concurrent = 1
check_interval = 1
log_level = "info"

[[runners]]
  name = "ec2-custom"
  url = %q
  token = "glrt-fake-runner-token"
  executor = "custom"
  shell = "bash"
  [runners.custom]
    config_exec = %[2]q
    config_args = ["config"]
    prepare_exec = %[2]q
    prepare_args = ["prepare"]
    run_exec = %[2]q
    run_args = ["run"]
    cleanup_exec = %[2]q
    cleanup_args = ["cleanup"]
    graceful_kill_timeout = 30
    force_kill_timeout = 10
%[3]s`

// realJob queues spec on the stack's stand-in jobs API, runs `gitlab-runner
// run-single` for it with the driver's settings in cfg, and calls during (if set)
// once the job log holds the string it names.
func realJob(t *testing.T, spec gitlabapi.Spec, cfg, waitFor string, during func(*gitlabapi.Server, *gitlabapi.Job)) (*gitlabapi.Job, string) {
	t.Helper()
	return realJobIn(t, "", spec, cfg, waitFor, during)
}

// realJobIn is realJob with runnerTOML added to the runner's [[runners]] entry
// (a [runners.cache] section, say).
func realJobIn(t *testing.T, runnerTOML string, spec gitlabapi.Spec, cfg, waitFor string, during func(*gitlabapi.Server, *gitlabapi.Job)) (*gitlabapi.Job, string) {
	t.Helper()
	api, runner := st.JobsAPI, realRunner(t)
	if spec.Token == "" {
		spec.Token = secrets[0]
	}
	job, err := api.Queue(gitlabapi.Payload(spec, api.URL))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	toml := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(toml, []byte(fmt.Sprintf(runnerConfig, api.URL, binary, runnerTOML)), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg == "" {
		cfg = st.SettingsFile
	}
	started := time.Now()
	cmd := exec.CommandContext(t.Context(), runner, "run-single", "-c", toml, "-r", "ec2-custom", "--max-builds", "1", "--wait-timeout", "30")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), stack.Env()...), "EC2_EXECUTOR_CONFIG="+cfg)
	var runnerLog strings.Builder
	cmd.Stdout, cmd.Stderr = &runnerLog, &runnerLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if during != nil {
		for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(api.Trace(job), waitFor); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the job log never showed %q:\n%s", waitFor, api.Trace(job))
			}
		}
		during(api, job)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gitlab-runner run-single: %v", err)
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("gitlab-runner did not finish the job within 5 minutes:\n%s", runnerLog.String())
	}
	trace := api.Trace(job)
	t.Logf("job %d ended %s in %s (run-single's wall time)", spec.ID, job.State, time.Since(started).Round(10*time.Millisecond))
	t.Logf("job log (as sent to the API):\n%s\nrunner log:\n%s", trace, runnerLog.String())
	for _, s := range secrets {
		if strings.Contains(trace, s) {
			t.Errorf("secret %q... appeared in the job log", s[:4])
		}
	}
	return job, trace
}

func registryCreds() []gitlabapi.Credential {
	return []gitlabapi.Credential{{URL: stack.RegistryAddr, Username: stack.RegistryUser, Password: stack.RegistryPassword}}
}

func TestRealRunnerPassingJobWithAServiceAndAPrivateImage(t *testing.T) {
	job, trace := realJob(t, gitlabapi.Spec{ID: 8001, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		Services:    []gitlabapi.Service{{Name: stack.ServiceImage, Alias: "web"}},
		Script:      []string{"echo from the real runner", "wget -qO- http://web:8080/"},
		AfterScript: []string{"echo after: $CI_JOB_STATUS"}}, "", "", nil)
	if job.State != "success" {
		t.Fatalf("job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Using Custom executor", "Pulling image "+stack.JobImage+" with credentials from job payload credentials",
		"from the real runner", "service-ok", "after: success", "Job succeeded")
	assertNoneRunning(t)
}

func TestRealRunnerFailingScriptIsAScriptFailure(t *testing.T) {
	job, trace := realJob(t, gitlabapi.Spec{ID: 8002, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		Script: []string{"echo about to fail", "exit 3"}, AfterScript: []string{"echo after: $CI_JOB_STATUS"}}, "", "", nil)
	// 17.5 has no BUILD_EXIT_CODE_FILE: a build failure reaches the runner as exit code 1.
	if job.State != "failed" || job.FailureReason != "script_failure" || job.ExitCode != 1 {
		t.Errorf("got %s/%s exit %d, want failed/script_failure exit 1", job.State, job.FailureReason, job.ExitCode)
	}
	contains(t, trace, "about to fail", "after: failed", "ERROR: Job failed: exit status 1") // 17.5's words
	assertNoneRunning(t)
}

func TestRealRunnerCancelFromTheServerStopsTheScript(t *testing.T) {
	var cancelled time.Time
	job, trace := realJob(t, gitlabapi.Spec{ID: 8003, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		Script: []string{"echo started", "sleep 614", "echo never"}}, "", "\nstarted", func(api *gitlabapi.Server, j *gitlabapi.Job) {
		cancelled = time.Now()
		api.Cancel(j)
	})
	took := time.Since(cancelled)
	if job.State != "failed" || strings.Contains(trace, "\nnever") {
		t.Errorf("got %s/%s, want the job failed by the cancel", job.State, job.FailureReason)
	}
	if took > 60*time.Second {
		t.Errorf("the runner took %s to end the job after the cancel", took)
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 614").Output(); len(out) > 0 {
		t.Errorf("the cancelled script still runs: pids %s", out)
	}
	contains(t, trace, "started")
	assertNoneRunning(t)
}

func TestRealRunnerJobServedByThePool(t *testing.T) {
	p := newPool(t, "real-runner", 1, nil)
	p.start()
	p.waitIdle(1)
	job, trace := realJob(t, gitlabapi.Spec{ID: 8004, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		Script: []string{"echo on a pooled worker"}}, p.jobCfg, "", nil)
	if job.State != "success" {
		t.Errorf("job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "from the pool", "on a pooled worker", "Job succeeded")
	p.finish()
}

func TestRealRunnerHelperCachesAcrossJobsAndUploadsArtifacts(t *testing.T) {
	cache := t.TempDir()
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	// The operator's host cache directory replaces the job's cache volume, so the
	// cache outlives the job's worker here (the stack's workers share one dockerd).
	cfg := settingsFile(t, "real-helper.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Docker.Volumes = append(s.Docker.Volumes, cache+":/cache")
	})
	first, trace := realJob(t, gitlabapi.Spec{ID: 8005, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		CacheKey: "deps", CachePaths: []string{"vendor"}, ArtifactPaths: []string{"out"},
		Script: []string{"mkdir -p vendor out", "echo dep-from-8005 > vendor/dep", "echo artifact > out/a"}}, cfg, "", nil)
	if first.State != "success" {
		t.Fatalf("first job ended %s (%s)", first.State, first.FailureReason)
	}
	if !slices.Contains(first.ArtifactFiles, "out/a") {
		t.Errorf("the stand-in API received artifacts %v, want out/a", first.ArtifactFiles)
	}
	contains(t, trace, "Created cache", "Uploading artifacts", "201 Created")
	second, trace := realJob(t, gitlabapi.Spec{ID: 8006, ProjectID: 7, Image: stack.JobImage, Credentials: registryCreds(),
		CacheKey: "deps", CachePaths: []string{"vendor"}, Script: []string{"cat vendor/dep"}}, cfg, "", nil)
	if second.State != "success" {
		t.Fatalf("second job ended %s (%s)", second.State, second.FailureReason)
	}
	contains(t, trace, "Successfully extracted cache", "dep-from-8005")
	assertNoneRunning(t)
}
