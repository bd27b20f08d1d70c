//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

func TestServicesAreReachedByAliasAndAutomaticNameAndASilentOneOnlyWarns(t *testing.T) {
	cfg := settingsFile(t, "services.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Docker.AllowedPullPolicies = []string{settings.PullAlways, settings.PullIfNotPresent, settings.PullNever}
		s.Docker.WaitForServicesTimeout = settings.Duration{Duration: 2 * time.Second}
	})
	job := baseJob(4001)
	job.Variables = []runnersim.Variable{{Key: "PUBLIC_VAR", Value: "seen-by-services", Public: true},
		{Key: "PRIVATE_VAR", Value: "only-for-the-job"}}
	job.Services = []runnersim.Service{
		{Name: stack.ServiceImage, Alias: "web,www"},
		{Name: stack.LocalServiceImage, PullPolicy: []string{settings.PullNever}},
		{Name: stack.ServiceImage, Alias: "silent", Command: []string{"sh", "-c", "echo silent-service-started; env | sort; sleep 3600"},
			Variables: map[string]string{"SERVICE_OWN": "svc-var"}},
	}
	job.Script = []string{"wget -q -O- http://web:8080/", "wget -q -O- http://www:8080/", "wget -q -O- http://ci-svc-web:8080/",
		"wget -q -O- http://ci-svc__web:8080/", `echo "job env: $(tr '\0' '\n' < /proc/1/environ | grep -c _VAR=)"`}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	if n := strings.Count(res.Log, "service-ok"); n != 4 {
		t.Errorf("service answered %d of 4 requests", n)
	}
	contains(t, res.Log, "Using locally found image "+stack.LocalServiceImage+" (pull policy never)",
		"Service "+stack.ServiceImage+" did not come up (nothing accepted connections on port 8080 within 2s); continuing. Its last log lines", "silent-service-started",
		"PUBLIC_VAR=seen-by-services", "SERVICE_OWN=svc-var", "job env: 2")
	if strings.Contains(res.Log, "PRIVATE_VAR=only-for-the-job") {
		t.Error("a service got a non-public variable")
	}
}

// TestServiceFromARegistryWithAPortAnswersToBothAutomaticNames pulls a service from the
// stack's registry (127.0.0.1:5000): as in the docker executor, its automatic names
// drop the registry's port.
func TestServiceFromARegistryWithAPortAnswersToBothAutomaticNames(t *testing.T) {
	job := baseJob(4010)
	job.Services = []runnersim.Service{{Name: stack.ServiceImage}}
	job.Script = []string{"wget -q -O- http://127.0.0.1__ci__service:8080/", "wget -q -O- http://127.0.0.1-ci-service:8080/"}
	res := runJob(t, job, "")
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	if n := strings.Count(res.Log, "service-ok"); n != 2 {
		t.Errorf("service answered %d of 2 requests", n)
	}
	contains(t, res.Log, "Started service "+stack.ServiceImage+" as 127.0.0.1__ci__service, 127.0.0.1-ci-service")
}

func TestHelperContainerClonesCachesAndUploadsForTheBuildContainer(t *testing.T) {
	repo := bareRepo(t)
	cfg := settingsFile(t, "helper.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Docker.Volumes = append(s.Docker.Volumes, repo+":/repo.git:ro")
	})
	job := baseJob(4002)
	job.RepoURL = "/repo.git"
	job.CacheKey, job.CachePaths, job.Artifacts = "deps", []string{"vendor"}, []string{"out"}
	job.Script = []string{"cat README", "command -v gitlab-runner || echo no gitlab-runner in the job image",
		"mkdir -p vendor out && echo dep > vendor/dep && echo artifact > out/a"}
	job.Extra = map[string][]string{"archive_cache": {"unzip -l ../../../cache/group/demo/deps/cache.zip"}}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	// The real gitlab-runner-helper's own words: nothing to restore in a fresh job's
	// cache volume, then the archive it made, then the upload the jobs API took.
	contains(t, res.Log,
		"hello from the test repository",    // cloned by the helper, read by the build container
		"no gitlab-runner in the job image", // the build container is the job image
		"Checking cache for deps...", "WARNING: Failed to extract cache",
		"Creating cache deps...", "vendor/dep", "Created cache",
		"Uploading artifacts...", "201 Created")
	if files := st.JobsAPI.Job(4002).ArtifactFiles; !slices.Contains(files, "out/a") {
		t.Errorf("the jobs API received artifacts %v, want out/a", files)
	}
	assertStages(t, res, "config prepare prepare_script get_sources restore_cache build_script archive_cache upload_artifacts_on_success cleanup_file_variables cleanup")
}

func TestEntrypointUserAndNoPrivilege(t *testing.T) {
	job := baseJob(4003)
	job.ImageEntrypoint = []string{"/bin/sh", "-c", `echo "entrypoint override ran" >&2; echo "entrypoint at uptime $(cut -d' ' -f1 /proc/uptime)" >&2
export EP_SETUP="set by the entrypoint"; exec "$@"`, "--"}
	job.ImageUser = "1000"
	job.AfterScript = []string{`echo "after: $EP_SETUP"`, `echo "left in the background: $(ps -o args | grep -c '[s]leep 613')"`}
	// get_sources takes 3 s more, time enough for the build container's start (about
	// a second here) that the holder begins once prepare is done.
	job.Extra = map[string][]string{"get_sources": {"sleep 3"}}
	job.Script = []string{`echo "script: $EP_SETUP"`, "sleep 613 &", "echo uid=$(id -u)", "grep -E 'Cap(Eff|Bnd)' /proc/self/status", "echo to-stdout", "echo to-stderr >&2",
		`cap=$(grep CapBnd /proc/self/status | cut -f2); echo "net_raw=$(( (0x$cap >> 13) & 1 ))"`}
	res := runJob(t, job, "")
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "entrypoint override ran", "uid=1000", "CapEff:\t0000000000000000", "CapBnd:\t", "net_raw=1",
		"script: set by the entrypoint", "after: set by the entrypoint", "left in the background: 0")
	if strings.Contains(res.Log, "ffffffffff") {
		t.Error("the build container has every capability: privileged is on")
	}
	for _, c := range res.Calls {
		if c.Stage == "build_script" && (!strings.Contains(c.Stderr, "to-stderr") || strings.Contains(c.Stderr, "to-stdout")) {
			t.Errorf("stdout and stderr mixed: the driver's stderr was %q", c.Stderr)
		}
	}
	checkEntrypointRanAhead(t, res)
}

// checkEntrypointRanAhead wants the entrypoint run once, its output in the job log
// of build_script (the build container's first stage), and the container started by
// the job's holder before that stage began: the start overlaps the helper's stages
// (which the test makes long enough for it).
func checkEntrypointRanAhead(t *testing.T, res runnersim.Result) {
	t.Helper()
	if n := strings.Count(res.Log, "entrypoint override ran"); n != 1 {
		t.Errorf("the entrypoint's output appears %d times, want once", n)
	}
	i := slices.IndexFunc(res.Calls, func(c runnersim.Call) bool { return c.Stage == "build_script" })
	if i < 0 || !strings.Contains(res.Calls[i].Stderr, "entrypoint override ran") {
		t.Fatal("build_script did not show the entrypoint's output")
	}
	var ran float64
	_, at, _ := strings.Cut(res.Calls[i].Stderr, "entrypoint at uptime ")
	if _, err := fmt.Sscanf(at, "%f", &ran); err != nil {
		t.Fatalf("no uptime from the entrypoint: %v", err)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	var now float64
	fmt.Sscanf(string(up), "%f", &now)
	if began := now - time.Since(res.Calls[i].Start).Seconds(); ran >= began {
		t.Errorf("the entrypoint ran %.2fs after build_script began: the build container was not started ahead of it", ran-began)
	}
}

func TestPullPolicies(t *testing.T) {
	all := func(s *settings.Settings) {
		s.Docker.AllowedPullPolicies = []string{settings.PullAlways, settings.PullIfNotPresent, settings.PullNever}
	}
	cfg := settingsFile(t, "pull.toml", st.Endpoint(), all)
	t.Run("if-not-present uses the image on the worker", func(t *testing.T) {
		job := baseJob(4004)
		job.ImagePullPolicy = []string{settings.PullIfNotPresent}
		job.Script = []string{"true"}
		res := runJob(t, job, cfg)
		contains(t, res.Log, "Using locally found image "+stack.JobImage+" (pull policy if-not-present)", "Job succeeded")
	})
	t.Run("always pulls", func(t *testing.T) {
		job := baseJob(4005)
		job.Script = []string{"true"}
		res := runJob(t, job, cfg)
		contains(t, res.Log, "Pulling image "+stack.JobImage+" with credentials", "Job succeeded")
	})
	t.Run("never with the image absent fails clearly", func(t *testing.T) {
		job := baseJob(4006)
		job.Image = stack.RegistryAddr + "/ci/never-pushed:1"
		job.ImagePullPolicy = []string{settings.PullNever}
		res := runJob(t, job, cfg)
		if res.Status == "success" {
			t.Fatal("job succeeded without its image")
		}
		contains(t, res.Log, "image "+job.Image+" is not on the worker and the pull policy is never")
	})
	t.Run("a policy the runner does not allow fails before launching", func(t *testing.T) {
		proxy := stack.NewProxy()
		defer proxy.Close()
		job := baseJob(4007)
		job.ImagePullPolicy = []string{settings.PullNever}
		res := runJob(t, job, settingsFile(t, "pull-default.toml", proxy.URL, nil))
		if res.FailureReason != "script_failure" {
			t.Fatalf("got %s/%s, want a job configuration failure", res.Status, res.FailureReason)
		}
		contains(t, res.Log, "pull_policy never is not allowed: the runner allows always (docker.allowed_pull_policies)")
		if n := proxy.Counts()["RunInstances"]; n != 0 {
			t.Errorf("%d instances launched for a job that cannot run", n)
		}
	})
	t.Run("a disallowed image is refused before any pull", func(t *testing.T) {
		proxy := stack.NewProxy()
		defer proxy.Close()
		job := baseJob(4008)
		job.Image = stack.RegistryAddr + "/other/tool:1"
		res := runJob(t, job, settingsFile(t, "allowed.toml", proxy.URL, func(s *settings.Settings) {
			s.Docker.AllowedImages = []string{stack.RegistryAddr + "/ci/**"}
		}))
		contains(t, res.Log, "image "+job.Image+" is not allowed: it matches none of "+stack.RegistryAddr+"/ci/** (docker.allowed_images)")
		if strings.Contains(res.Log, "Pulling image") || proxy.Counts()["RunInstances"] != 0 {
			t.Error("a disallowed image was pulled or a worker launched")
		}
	})
}

// bareRepo makes a one-commit bare repository for get_sources to clone.
func bareRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "repo.git")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("hello from the test repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", work}, {"-C", work, "add", "README"},
		{"-C", work, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-q", "-m", "first"},
		{"clone", "-q", "--bare", work, bare}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return bare
}

// TestLargeOutputArrivesWholeInOrderAndStreams pushes about 200 MB through the
// container, the SSH tunnel and the driver, checking every line as it arrives.
func TestLargeOutputArrivesWholeInOrderAndStreams(t *testing.T) {
	const lines = 25_000_000 // seq 1..25e6 is 213,888,897 bytes
	check := &sequenceChecker{}
	job := baseJob(4010)
	job.Script = []string{"echo stream-start", "sleep 2", "seq 1 " + strconv.Itoa(lines)}
	res := runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: st.SettingsFile, Env: stack.Env(),
		GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond, Log: check, ForgetLog: true})
	assertNoneRunning(t)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	if check.next != lines+1 || check.bad != "" {
		t.Fatalf("got lines 1..%d in order, then %q (want 1..%d)", check.next-1, check.bad, lines)
	}
	if check.bytes < 200_000_000 {
		t.Errorf("only %d bytes arrived", check.bytes)
	}
	if lead := check.last.Sub(check.started); lead < 1500*time.Millisecond {
		t.Errorf("the first line arrived only %s before the last: output is held back", lead)
	}
	t.Logf("%d bytes, %d lines in order; first output %s before the last line", check.bytes, lines, check.last.Sub(check.started).Round(time.Millisecond))
}

// sequenceChecker reads the job log as it streams: digits-only lines must count up from 1.
type sequenceChecker struct {
	partial       []byte
	next          int
	bytes         int64
	bad           string
	started, last time.Time
}

func (c *sequenceChecker) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	data := append(c.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		c.line(string(data[:i]))
		data = data[i+1:]
	}
	c.partial = append(c.partial[:0], data...)
	return len(p), nil
}

func (c *sequenceChecker) line(l string) {
	if l == "stream-start" && c.started.IsZero() {
		c.started = time.Now()
	}
	n, err := strconv.Atoi(l)
	if err != nil || c.bad != "" {
		return
	}
	if c.next == 0 {
		c.next = 1
	}
	if n != c.next {
		c.bad = l
		return
	}
	c.next++
	c.last = time.Now()
}

func TestOperatorDockerOptionsReachTheBuildContainer(t *testing.T) {
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "from-host"), []byte("bind mounted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := settingsFile(t, "docker-options.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Job.HelperImage = stack.HelperImageTemplate
		s.Docker.CapDrop = []string{"NET_RAW"} // privileged cannot start here: this machine may not grant every capability
		s.Docker.Volumes = []string{shared + ":/shared:ro", "/scratch"}
		s.Docker.ExtraHosts = []string{"db.internal:10.1.2.3"}
		s.Docker.ShmSize = "128m"
		s.Docker.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}
	})
	job := baseJob(4011)
	job.Script = []string{"cat /shared/from-host", "touch /scratch/ok && echo scratch writable", "grep db.internal /etc/hosts",
		"df -k /dev/shm | tail -1", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
		`cap=$(grep CapBnd /proc/self/status | cut -f2); echo "net_raw=$(( (0x$cap >> 13) & 1 ))"`}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "Using locally found image "+stack.VersionedHelperImage(), "bind mounted", "scratch writable",
		"10.1.2.3\tdb.internal", " 131072 ", "\n80\n", "net_raw=0")
}
