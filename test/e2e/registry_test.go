//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// privateJob has no credentials[] entry: the test supplies the login another way.
func privateJob(id int) runnersim.Job {
	job := baseJob(id)
	job.Credentials = nil
	job.ImagePullPolicy = nil
	job.Script = []string{"echo pulled a private image"}
	return job
}

func TestPrivateImageWithDockerAuthConfig(t *testing.T) {
	job := privateJob(5001)
	job.Variables = []runnersim.Variable{{Key: "DOCKER_AUTH_CONFIG", Value: stack.RegistryAuthConfig(stack.RegistryUser, stack.RegistryPassword)}}
	res := runJob(t, job, "")
	contains(t, res.Log, "Pulling image "+stack.JobImage+" with credentials from DOCKER_AUTH_CONFIG for "+stack.RegistryAddr, "Job succeeded")
}

func TestPrivateImageWithTheManagersDockerConfigAndAHelper(t *testing.T) {
	dir := t.TempDir()
	// A credential helper on the manager's PATH answers for the stack's registry.
	helper := "#!/bin/sh\nread host\necho \"{\\\"ServerURL\\\":\\\"$host\\\",\\\"Username\\\":\\\"" + stack.RegistryUser +
		"\\\",\\\"Secret\\\":\\\"" + stack.RegistryPassword + "\\\"}\"\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-stack"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.json")
	if err := os.WriteFile(config, []byte(`{"credHelpers":{"`+stack.RegistryAddr+`":"stack"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := settingsFile(t, "manager-config.toml", st.Endpoint(), func(s *settings.Settings) { s.Registry.DockerConfig = config })
	res := runnersim.Run(t.Context(), privateJob(5002), runnersim.Options{Binary: binary, Settings: cfg,
		Env: append(stack.Env(), "PATH="+dir+":"+os.Getenv("PATH")), PrepareRetryInterval: 200e6})
	checkJob(t, res)
	contains(t, res.Log, "with credentials from "+config+" credHelpers stack for "+stack.RegistryAddr, "Job succeeded")
}

func TestWrongPasswordIsAClearSystemFailureThatNamesNoSecret(t *testing.T) {
	const wrong = "wrong-password-e2e-71c3"
	job := privateJob(5003)
	job.Credentials = []runnersim.Credential{{URL: stack.RegistryAddr, Username: stack.RegistryUser, Password: wrong}}
	res := runJob(t, job, "")
	if res.FailureReason != "runner_system_failure" {
		t.Fatalf("got %s/%s, want a system failure", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "pulling "+stack.JobImage, "unauthorized")
	if strings.Contains(res.Log+res.RunnerLog, wrong) {
		t.Error("the wrong password appeared in the output")
	}
}

func TestRewriteSendsADockerHubNameToTheLocalRegistry(t *testing.T) {
	cfg := settingsFile(t, "rewrite.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Registry.Rewrites = []settings.Rewrite{{Prefix: "docker.io/", Replacement: stack.RegistryAddr + "/"}}
	})
	job := baseJob(5004)
	job.Image = stack.MirrorImage // docker.io/library/ci-mirror-job:1, which only the rewrite makes pullable here
	job.Script = []string{"echo rewritten"}
	res := runJob(t, job, cfg)
	contains(t, res.Log, "Rewrote image "+stack.MirrorImage+" to "+stack.RegistryAddr+"/library/ci-mirror-job:1 (registry.rewrites)",
		"Pulling image "+stack.RegistryAddr+"/library/ci-mirror-job:1 with credentials from job payload credentials", "rewritten", "Job succeeded")
}

// TestECRImageWithMotosTokenIsCachedAcrossJobs pulls an "ECR" image with the token
// moto's ecr:GetAuthorizationToken returns (the stack points the ECR name at its
// registry, whose htpasswd holds that token, for the worker's dockerd only). Two jobs
// share one token through the 0600 cache.
func TestECRImageWithMotosTokenIsCachedAcrossJobs(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.FreshECRTokens()
	state := t.TempDir()
	cfg := settingsFile(t, "ecr.toml", proxy.URL, func(s *settings.Settings) {
		s.StateDir = state
		s.Registry.ECR = settings.ECRManager
		s.Worker.InsecureRegistries = []string{stack.ECRHost}
	})
	for i, want := range []string{"ECR token from the manager's AWS identity for ", "ECR token from the manager's AWS identity (cached) for "} {
		job := baseJob(5005 + i)
		job.Image = stack.ECRImage
		job.Script = []string{"echo from ECR"}
		res := runJob(t, job, cfg)
		contains(t, res.Log, "Pulling image "+stack.ECRImage+" with credentials from "+want+stack.ECRHost, "from ECR", "Job succeeded")
	}
	if n := proxy.Counts()["GetAuthorizationToken"]; n != 1 {
		t.Errorf("GetAuthorizationToken called %d times for two jobs, want 1", n)
	}
	files, _ := filepath.Glob(filepath.Join(state, "ecr", "*.json"))
	if len(files) != 1 {
		t.Fatalf("token cache files: %v", files)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token cache %s is %v (%v), want 0600", files[0], st.Mode(), err)
	}
}

// TestECRImageWithTheWorkersHelper asks the worker's docker-credential-ecr-login over
// SSH (the stack's stand-in gets moto's token with the worker's stand-in identity), so
// the manager makes no ECR call at all.
func TestECRImageWithTheWorkersHelper(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	cfg := settingsFile(t, "ecr-worker.toml", proxy.URL, func(s *settings.Settings) {
		s.Registry.ECR = settings.ECRWorker
		s.Worker.InsecureRegistries = []string{stack.ECRHost}
	})
	job := baseJob(5007)
	job.Image = stack.ECRImage
	job.Script = []string{"echo from ECR via the worker"}
	res := runJob(t, job, cfg)
	contains(t, res.Log, "Pulling image "+stack.ECRImage+" with credentials from ECR token from the worker's instance profile for "+stack.ECRHost,
		"from ECR via the worker", "Job succeeded")
	if n := proxy.Counts()["GetAuthorizationToken"]; n != 0 {
		t.Errorf("the manager called GetAuthorizationToken %d times in worker mode", n)
	}
}

// TestStackUpSettingsAreReadyToUse runs a job that brings no registry login on the
// settings file `make stack-up` prints: it must pull the stack's default job image.
func TestStackUpSettingsAreReadyToUse(t *testing.T) {
	res := runJob(t, privateJob(5010), st.ReadySettingsFile)
	contains(t, res.Log, "with credentials from", "pulled a private image", "Job succeeded")
}
