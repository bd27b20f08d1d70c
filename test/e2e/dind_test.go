//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// Docker-in-Docker the ways GitLab documents it for the docker executor, through the
// real runner: a privileged docker:dind-like service with TLS (certificates shared in
// the /certs/client volume) or without, and the worker's own socket bound in.

// dindScript checks the daemon, builds a two-line Dockerfile, runs the image on the
// dind daemon (a container it starts, not only a build) and pushes it with the
// registry login a GitLab job has.
func dindScript() []string {
	return []string{
		"docker info --format 'daemon {{.ServerVersion}} storage {{.Driver}}'",
		"mkdir -p ctx && cp /bin/busybox ctx/busybox && printf 'FROM scratch\\nCOPY busybox /busybox\\n' > ctx/Dockerfile",
		`echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"`,
		`docker build -t "$CI_REGISTRY/ci/built:$CI_JOB_ID" ctx`,
		`docker run --rm "$CI_REGISTRY/ci/built:$CI_JOB_ID" /busybox sh -c 'echo "started by the dind daemon as $(/busybox hostname)"'`,
		`docker push "$CI_REGISTRY/ci/built:$CI_JOB_ID"`,
	}
}

func dindSpec(id int, vars map[string]string) gitlabapi.Spec {
	v := map[string]string{"CI_REGISTRY": stack.RegistryAddr, "CI_REGISTRY_USER": stack.RegistryUser, "CI_REGISTRY_PASSWORD": stack.RegistryPassword}
	for k, val := range vars {
		v[k] = val
	}
	return gitlabapi.Spec{ID: id, ProjectID: 73, Image: stack.DockerCLIImage, Credentials: registryCreds(),
		Services: []gitlabapi.Service{{Name: stack.DindImage, Alias: "docker"}}, Variables: v, Script: dindScript()}
}

func dindSettings(t *testing.T, name string, privileged bool) string {
	t.Helper()
	if err := st.DockerImages(t.Context()); err != nil {
		t.Fatal(err)
	}
	if privileged && !st.Privileged {
		t.Fatal("the stack's dockerd cannot run privileged containers (it was already running without the stack's runtime: stop it)")
	}
	return settingsFile(t, name, st.Endpoint(), func(s *settings.Settings) {
		s.Docker.Privileged = privileged
		s.Docker.Volumes = append(s.Docker.Volumes, "/certs/client")
	})
}

func checkPushed(t *testing.T, id int) {
	t.Helper()
	if err := stack.PullBack(context.Background(), stack.RegistryAddr+"/ci/built:"+strconv.Itoa(id)); err != nil {
		t.Errorf("the image the job pushed: %v", err)
	}
}

func TestRealRunnerDockerInDockerWithTLS(t *testing.T) {
	cfg := dindSettings(t, "dind-tls.toml", true)
	job, trace := realJob(t, dindSpec(8131, map[string]string{"DOCKER_HOST": "tcp://docker:2376", "DOCKER_TLS_CERTDIR": "/certs",
		"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs/client"}), cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("dind job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "Started service "+stack.DindImage+" as", "daemon 20.10", "Login Succeeded",
		"started by the dind daemon as", "Pushed")
	if strings.Contains(trace, "did not come up") {
		t.Error("the dind service was reported down")
	}
	checkPushed(t, 8131)
	assertNoneRunning(t)
}

func TestRealRunnerDockerInDockerWithoutTLS(t *testing.T) {
	cfg := dindSettings(t, "dind-plain.toml", true)
	job, trace := realJob(t, dindSpec(8132, map[string]string{"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""}), cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("dind job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "daemon 20.10", "started by the dind daemon as", "Pushed")
	checkPushed(t, 8132)
	assertNoneRunning(t)
}

func TestRealRunnerDockerInDockerWithoutPrivilegeFailsWithTheServicesWords(t *testing.T) {
	cfg := dindSettings(t, "dind-unprivileged.toml", false)
	job, trace := realJob(t, dindSpec(8133, map[string]string{"DOCKER_HOST": "tcp://docker:2376", "DOCKER_TLS_CERTDIR": "/certs",
		"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs/client"}), cfg, "", nil)
	if job.State != "failed" || job.FailureReason != "script_failure" {
		t.Errorf("unprivileged dind job ended %s (%s), want failed (script_failure) as with the docker executor", job.State, job.FailureReason)
	}
	contains(t, trace, "Service "+stack.DindImage+" did not come up", "exited with code", "permission denied")
	assertNoneRunning(t)
}

func TestRealRunnerBindsTheWorkersDockerSocket(t *testing.T) {
	if err := st.DockerImages(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg := settingsFile(t, "docker-socket.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Docker.Volumes = append(s.Docker.Volumes, "/var/run/docker.sock:/var/run/docker.sock")
	})
	spec := dindSpec(8134, nil)
	spec.Services = nil
	job, trace := realJob(t, spec, cfg, "", nil)
	if job.State != "success" {
		t.Fatalf("socket job ended %s (%s)", job.State, job.FailureReason)
	}
	contains(t, trace, "daemon 20.10", "started by the dind daemon as", "Pushed")
	checkPushed(t, 8134)
	assertNoneRunning(t)
}
