//go:build e2e

package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// realBootTimeout is ssh.connect_timeout for workers that boot for real: cloud-init
// installs Docker from packages (about a minute here once the proxy has them).
const realBootTimeout = 6 * time.Minute

// realBootRoot builds (once, cached between runs) the Debian root filesystem the
// real boots use; a machine that cannot reach Debian's repository fails here.
func realBootRoot(t *testing.T) {
	t.Helper()
	start := time.Now()
	if _, err := stack.RealRoot(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("real-boot root filesystem ready after %s", time.Since(start).Round(time.Second))
}

func realBootSettings(t *testing.T, name, ami string) string {
	return settingsFile(t, name, st.Endpoint(), func(s *settings.Settings) {
		s.Instance.AMI = ami
		s.SSH.ConnectTimeout = settings.Duration{Duration: realBootTimeout}
		s.Worker.RegistryMirrors = []string{"http://" + stack.OpenRegistryAddr}
		s.Worker.DaemonOptions = map[string]any{"max-concurrent-downloads": 2}
		s.Docker.Volumes = nil // the jobs API's socket is on the host, not in a worker of its own
	})
}

// realWorkerLook is what a test reads inside the worker before cleanup ends it.
type realWorkerLook struct {
	daemonJSON, dockerInfo, cloudInit string
}

// runOnRealWorker runs the job and looks inside its worker before cleanup.
func runOnRealWorker(t *testing.T, job runnersim.Job, cfg string) (runnersim.Result, realWorkerLook) {
	var look realWorkerLook
	res := runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: cfg, Env: stack.Env(),
		GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond,
		BeforeCleanup: func([]string, string) {
			ids := st.Boot.RealRunning()
			if len(ids) != 1 {
				t.Errorf("want one worker booted for real, have %v", ids)
				return
			}
			read := func(argv ...string) string {
				out, err := st.Boot.RealExec(ids[0], argv...)
				if err != nil {
					t.Errorf("%v in the worker: %v\n%s", argv, err, out)
				}
				return string(out)
			}
			look.daemonJSON = read("cat", "/etc/docker/daemon.json")
			look.dockerInfo = read("docker", "info", "--format", "{{json .Labels}} {{json .RegistryConfig.Mirrors}} {{.ServerVersion}}")
			look.cloudInit = read("cloud-init", "analyze", "show")
		}})
	checkJob(t, res)
	return res, look
}

// TestJobOnAWorkerThatBootsForReal boots Debian 12 without Docker under systemd,
// lets cloud-init do everything our user data asks (user and keys, Docker and the
// ECR helper from Debian's packages, daemon.json, the readiness marker) and runs a
// job with a service there through the driver. With an AMI that has a daemon.json of
// its own, the merge keeps its keys.
func TestJobOnAWorkerThatBootsForReal(t *testing.T) {
	realBootRoot(t)
	for _, c := range []struct {
		name, ami string
		amiKeys   bool
	}{{"debian12", stack.DebianAMI, false}, {"debian12-with-daemon-json", stack.DebianDaemonJSONAMI, true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := realBootSettings(t, "realboot-"+c.name+".toml", c.ami)
			job := baseJob(3400)
			job.Services = []runnersim.Service{{Name: stack.ServiceImage, Alias: "web"}}
			job.Script = []string{"echo hello from a worker that booted for real", "wget -q -O- http://web:8080/"}
			res, look := runOnRealWorker(t, job, cfg)
			if res.Status != "success" {
				t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
			}
			contains(t, res.Log, "hello from a worker that booted for real", "answers over SSH and Docker", "booted: cloud-init ", "modules-final")
			for _, line := range strings.Split(res.Log, "\n") {
				if strings.Contains(line, "answers over SSH and Docker") || strings.Contains(line, "booted: cloud-init") {
					t.Logf("boot: %s", strings.TrimSpace(line))
				}
			}
			t.Logf("cloud-init analyze show:\n%s", look.cloudInit)
			checkMergedDaemonJSON(t, look, c.amiKeys)
			waitNoRealWorkers(t)
		})
	}
}

func checkMergedDaemonJSON(t *testing.T, look realWorkerLook, amiKeys bool) {
	t.Helper()
	var merged struct {
		Mirrors   []string `json:"registry-mirrors"`
		Downloads int      `json:"max-concurrent-downloads"`
		Labels    []string `json:"labels"`
		LogLevel  string   `json:"log-level"`
	}
	if err := json.Unmarshal([]byte(look.daemonJSON), &merged); err != nil {
		t.Fatalf("the worker's daemon.json: %v\n%s", err, look.daemonJSON)
	}
	ours := slices.Equal(merged.Mirrors, []string{"http://" + stack.OpenRegistryAddr}) && merged.Downloads == 2
	theirs := slices.Equal(merged.Labels, []string{"ami=debian12-stack"}) && merged.LogLevel == "warn"
	if !ours || theirs != amiKeys {
		t.Errorf("daemon.json (AMI keys expected: %v):\n%s", amiKeys, look.daemonJSON)
	}
	// And the Docker that runs uses it: the merge restarted it (or it started with it).
	if !strings.Contains(look.dockerInfo, stack.OpenRegistryAddr) || strings.Contains(look.dockerInfo, "ami=debian12-stack") != amiKeys {
		t.Errorf("the worker's Docker does not run with the merged daemon.json: %s", look.dockerInfo)
	}
}

// TestRealBootThatFailsReachesTheOperator breaks the worker's package source: the
// Docker install fails, the worker reports it, and prepare fails as a system failure
// at once (not after ssh.connect_timeout) with the worker's words; each attempt's
// instance is terminated.
func TestRealBootThatFailsReachesTheOperator(t *testing.T) {
	realBootRoot(t)
	cfg := realBootSettings(t, "realboot-broken.toml", stack.DebianNoPackagesAMI)
	job := baseJob(3401)
	res := runJob(t, job, cfg)
	if res.Status != "failed" || res.FailureReason != "runner_system_failure" {
		t.Fatalf("status %s (%s), want a runner system failure", res.Status, res.FailureReason)
	}
	msg := "the worker's boot failed: install-docker failed (exit code 100)"
	contains(t, res.Log, msg, "503")
	for _, c := range res.Calls {
		if c.Stage == "prepare" && c.Duration >= realBootTimeout {
			t.Errorf("prepare took %s: it waited out ssh.connect_timeout instead of reading the worker's report", c.Duration)
		}
	}
	waitNoRealWorkers(t)
	record(t, "fault", "a worker that boots for real finds its package source down: cloud-init cannot install Docker", saw(res, msg))
}

// waitNoRealWorkers waits for the boot simulator to power off the job's terminated
// workers (it polls EC2 ten times a second).
func waitNoRealWorkers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(st.Boot.RealRunning()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if ids := st.Boot.RealRunning(); len(ids) > 0 {
		t.Errorf("workers still booted 30s after their job: %v", ids)
	}
}

// TestRealRunnerPipelineOnAWorkerThatBootsForReal: the clone, cache and
// Docker-in-Docker pipeline through the real runner on an instance of the stack's
// Debian AMI: Docker installed by cloud-init from our user data, the job's own
// clone with its token, the S3 cache saved, and a privileged dind service that
// builds, runs a container and pushes.
func TestRealRunnerPipelineOnAWorkerThatBootsForReal(t *testing.T) {
	realBootRoot(t)
	if err := st.DockerImages(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := newProject(t, "realboot")
	cfg := settingsFile(t, "realboot-pipeline.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Instance.AMI = stack.DebianPrivilegedAMI
		s.SSH.ConnectTimeout = settings.Duration{Duration: realBootTimeout}
		s.Docker.Privileged = true
		s.Docker.Volumes = []string{st.RoutesVolume(), "/certs/client"}
	})
	spec := dindSpec(8151, map[string]string{"DOCKER_HOST": "tcp://docker:2376", "DOCKER_TLS_CERTDIR": "/certs",
		"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs/client"})
	spec.ProjectID, spec.Project, spec.GitStrategy, spec.GitDepth, spec.SHA = 75, p.app.Path, "clone", 1, p.tip
	spec.CacheKey, spec.CachePaths, spec.CachePolicy = "realboot-8151", []string{"vendor"}, "push"
	spec.Script = append([]string{"echo HEAD=$(cat .git/HEAD)", "mkdir -p vendor && echo from-a-real-worker > vendor/dep"}, spec.Script...)
	job, trace := realJobIn(t, stack.RunnerS3Cache(stack.MotoAddr), spec, cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("pipeline job on a real worker ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "booted: cloud-init", "HEAD="+p.tip, "daemon 20.10", "started by the dind daemon as", "Pushed", "Created cache")
	objects, err := stack.CacheObjects(t.Context())
	if err != nil || objects["project/75/realboot-8151"] == 0 {
		t.Errorf("the cache object is not in the bucket: %v %v", objects, err)
	}
	checkPushed(t, 8151)
	assertNoneRunning(t)
	waitNoRealWorkers(t)
}
