package stages

import (
	"errors"
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/settings"
)

func TestPullPoliciesFollowTheDockerExecutor(t *testing.T) {
	d := settings.Default().Docker // pull_policy ["always"], no allowed list
	cases := []struct {
		job, policy, allowed []string
		want, err            string
	}{
		{nil, nil, nil, "always", ""},
		{[]string{"if-not-present"}, []string{"always", "if-not-present"}, nil, "if-not-present", ""},
		{[]string{"never", "if-not-present"}, []string{"always"}, []string{"if-not-present", "never"}, "never if-not-present", ""},
		{[]string{"never"}, nil, nil, "", "pull_policy never is not allowed: the runner allows always"},
	}
	for _, c := range cases {
		if c.policy != nil {
			d.PullPolicy = c.policy
		}
		d.AllowedPullPolicies = c.allowed
		got, err := pullPolicies(c.job, d)
		var be *BuildError
		switch {
		case c.err != "" && (!errors.As(err, &be) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: want a job error %q, got %v", c.job, c.err, err)
		case c.err == "" && strings.Join(got, " ") != c.want:
			t.Errorf("%v: got %v (%v), want %s", c.job, got, err, c.want)
		}
	}
}

func TestAllowedImagesUseDoublestarPatterns(t *testing.T) {
	patterns := []string{"registry.example.com/ci/**", "alpine:*"}
	for image, ok := range map[string]bool{"registry.example.com/ci/tools/go:1.23": true, "alpine:3.20": true,
		"registry.example.com/other/x:1": false, "ubuntu:24.04": false} {
		err := checkAllowed(image, patterns, "image", "docker.allowed_images")
		if (err == nil) != ok {
			t.Errorf("%s: allowed=%v, err %v", image, ok, err)
		}
	}
	if checkAllowed("anything:1", nil, "image", "docker.allowed_images") != nil {
		t.Error("no patterns must allow every image")
	}
}

func TestHelperImagePlaceholders(t *testing.T) {
	tmpl := "reg/helper:${CI_RUNNER_ARCH}-${CI_RUNNER_VERSION}"
	for _, c := range []struct{ version, arch, want string }{
		{"17.5.0", "x86_64", "reg/helper:x86_64-v17.5.0"},
		{"v19.4.1~pre.12", "aarch64", "reg/helper:arm64-v19.4.1"},
		{"development version", "armv7l", "reg/helper:arm-latest"},
	} {
		if got, err := helperImage(tmpl, c.version, c.arch); err != nil || got != c.want {
			t.Errorf("%s/%s: %q %v, want %q", c.version, c.arch, got, err, c.want)
		}
	}
	if _, err := helperImage("reg/helper:${CI_RUNNER_REVISION}", "17.5.0", "x86_64"); err == nil || !strings.Contains(err.Error(), "CI_RUNNER_REVISION") {
		t.Errorf("unknown placeholder: %v", err)
	}
}

// TestServiceAliasesAsTheDockerExecutorNamesThem covers every shape of reference that
// gitlab-runner's own SplitNameAndVersion tests cover (helpers/container/services),
// plus the runner's habit of keeping a reference as written.
func TestServiceAliasesAsTheDockerExecutorNamesThem(t *testing.T) {
	digest := "@sha256:123456789012345678901234567890123456789012345678901234567890abcd"
	cases := []struct{ image, want string }{
		{"service", "service"},
		{"service:version", "service"},
		{"namespace/service", "namespace__service namespace-service"},
		{"namespace/service:version", "namespace__service namespace-service"},
		{"domain.tld/service", "domain.tld__service domain.tld-service"},
		{"domain.tld/service:version", "domain.tld__service domain.tld-service"},
		{"domain.tld/namespace/service", "domain.tld__namespace__service domain.tld-namespace-service"},
		{"domain.tld/namespace/service:version", "domain.tld__namespace__service domain.tld-namespace-service"},
		{"domain.tld:8080/service", "domain.tld__service domain.tld-service"},
		{"domain.tld:8080/service:version", "domain.tld__service domain.tld-service"},
		{"domain.tld:8080/namespace/service", "domain.tld__namespace__service domain.tld-namespace-service"},
		{"domain.tld:8080/namespace/service:version", "domain.tld__namespace__service domain.tld-namespace-service"},
		{"subdomain.domain.tld:8080/service", "subdomain.domain.tld__service subdomain.domain.tld-service"},
		{"subdomain.domain.tld:8080/service:version", "subdomain.domain.tld__service subdomain.domain.tld-service"},
		{"subdomain.domain.tld:8080/namespace/service", "subdomain.domain.tld__namespace__service subdomain.domain.tld-namespace-service"},
		{"subdomain.domain.tld:8080/namespace/service:version", "subdomain.domain.tld__namespace__service subdomain.domain.tld-namespace-service"},
		{"service" + digest, "service"},
		{"namespace/service" + digest, "namespace__service namespace-service"},
		{"domain.tld/service" + digest, "domain.tld__service domain.tld-service"},
		{"domain.tld/namespace/service" + digest, "domain.tld__namespace__service domain.tld-namespace-service"},
		{"domain.tld:8080/service" + digest, "domain.tld__service domain.tld-service"},
		{"domain.tld:8080/namespace/service" + digest, "domain.tld__namespace__service domain.tld-namespace-service"},
		{"subdomain.domain.tld:8080/service" + digest, "subdomain.domain.tld__service subdomain.domain.tld-service"},
		// The case, a tag and a digest together, and names kept as written.
		{"registry.example.com:5050/group/postgres:16", "registry.example.com__group__postgres registry.example.com-group-postgres"},
		{"127.0.0.1:5000/ci/svc:1" + digest, "127.0.0.1__ci__svc 127.0.0.1-ci-svc"},
		{"docker.io/library/postgres:16", "docker.io__library__postgres docker.io-library-postgres"},
		{"tutum/wordpress:latest", "tutum__wordpress tutum-wordpress"},
		// No reference at all: the runner gives no automatic name.
		{"Not A Reference", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := strings.Join(serviceAliases(c.image, ""), " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.image, got, c.want)
		}
	}
	if got := strings.Join(serviceAliases("postgres:16", "db, pg,postgres\tdb2"), " "); got != "postgres db pg db2" {
		t.Errorf("user aliases: %q", got)
	}
}

func TestASecondServiceGetsOnlyTheAliasesLeft(t *testing.T) {
	taken := map[string]bool{}
	if got := strings.Join(claimAliases(taken, serviceAliases("postgres:16", "db")), " "); got != "postgres db" {
		t.Errorf("first service: %q", got)
	}
	if got := strings.Join(claimAliases(taken, serviceAliases("postgres:15", "old")), " "); got != "old" {
		t.Errorf("second service: %q", got)
	}
	if got := claimAliases(taken, serviceAliases("postgres:14", "db")); len(got) != 0 {
		t.Errorf("a service with no alias left would start as %v", got)
	}
}

func TestServicesFromThePayloadOrTheEnvironment(t *testing.T) {
	d := testDriver(t, nil, `CUSTOM_ENV_CI_JOB_SERVICES=[{"name":"redis:7","alias":"cache","command":["redis-server"],"variables":{"A":"1"}}]`)
	svcs, err := d.jobServices(Job{})
	if err != nil || len(svcs) != 1 || svcs[0].Alias != "cache" || svcs[0].Variables[0].Key != "A" {
		t.Fatalf("from CI_JOB_SERVICES: %+v %v", svcs, err)
	}
	if svcs, _ := d.jobServices(Job{ServicesSent: true}); len(svcs) != 0 {
		t.Fatalf("a payload's (empty) services list must win: %+v", svcs)
	}
	d.Env.Vars["CI_JOB_SERVICES"] = `[{"name":`
	if _, err := d.jobServices(Job{}); err == nil || !strings.Contains(err.Error(), "CUSTOM_ENV_CI_JOB_SERVICES: truncated") {
		t.Fatalf("broken CI_JOB_SERVICES: %v", err)
	}
	d.Settings.Docker.ServicesLimit = 1
	if _, err := d.jobServices(Job{ServicesSent: true, Services: []Image{{Name: "a"}, {Name: "b"}}}); err == nil || !strings.Contains(err.Error(), "docker.services_limit = 1") {
		t.Fatalf("services_limit: %v", err)
	}
}

func TestStagesGoToTheDockerExecutorsContainers(t *testing.T) {
	st := State{HelperContainer: "helper", BuildContainer: "build"}
	for stage, want := range map[string]string{"prepare_script": "helper", "get_sources": "helper", "restore_cache": "helper",
		"archive_cache_on_failure": "helper", "upload_artifacts_on_success": "helper", "cleanup_file_variables": "helper",
		"build_script": "build", "step_release": "build", "after_script": "build", "some_future_stage": "build"} {
		if got := containerFor(st, stage); got != want {
			t.Errorf("%s ran in %s, want %s", stage, got, want)
		}
	}
}

func TestInJobECRMountsTheWorkersHelperAndConfig(t *testing.T) {
	d := testDriver(t, nil)
	st := &State{JobKey: "42-abcd"}
	if spec := d.buildSpec(st, Job{}, "img"); len(spec.Binds) != 0 || strings.Contains(strings.Join(spec.Env, " "), "DOCKER_CONFIG") {
		t.Fatalf("in-job ECR is opt-in: %+v", spec)
	}
	d.Settings.Registry.InJobECR = true
	spec := d.buildSpec(st, Job{}, "img")
	binds := strings.Join(spec.Binds, " ")
	if !strings.Contains(binds, "/etc/ec2-executor/job-docker:/etc/ec2-executor/job-docker:ro") ||
		!strings.Contains(binds, ":/usr/local/bin/docker-credential-ecr-login:ro") ||
		!strings.Contains(strings.Join(spec.Env, " "), "DOCKER_CONFIG=/etc/ec2-executor/job-docker") {
		t.Fatalf("binds %v env %v", spec.Binds, spec.Env)
	}
	if h := d.helperSpec(st, Job{}, "helper"); len(h.Binds) != 0 {
		t.Fatalf("the helper container got the ECR helper: %v", h.Binds)
	}
}

func TestAnOperatorVolumeAtTheCacheDirReplacesTheJobsOwn(t *testing.T) {
	d := &Driver{Settings: settings.Default()}
	d.Settings.Docker.Volumes = []string{"/cache", "/srv/builds:/builds/:rw", "/scratch"}
	var got []string
	for _, m := range d.mounts("42-ab") {
		got = append(got, m.Volume+"@"+m.Target)
	}
	want := "ec2x-42-ab-vol-0@/cache ec2x-42-ab-vol-2@/scratch"
	if strings.Join(got, " ") != want {
		t.Errorf("mounts %v, want %s", got, want)
	}
}

// TestServicesGetTheDockerExecutorsHostConfig: as createHostConfigForService does,
// services are privileged with the build container unless services_privileged says
// otherwise, get their own limits, security options and tmpfs, and never the build
// container's capabilities or limits.
func TestServicesGetTheDockerExecutorsHostConfig(t *testing.T) {
	d := &Driver{Settings: settings.Default()}
	o := &d.Settings.Docker
	o.Privileged, o.CapAdd, o.Memory, o.ShmSize = true, []string{"NET_ADMIN"}, "4g", "256m"
	o.ServiceMemory, o.ServiceCPUs = "512m", "0.5"
	o.ServicesSecurityOpt, o.ServicesTmpfs = []string{"seccomp=unconfined"}, map[string]string{"/var/lib/data": "rw"}
	h := d.serviceHost()
	if !h.Privileged || h.Memory != 512<<20 || h.NanoCPUs != 5e8 || h.ShmSize != 256<<20 || len(h.CapAdd) != 0 ||
		h.SecurityOpt[0] != "seccomp=unconfined" || h.Tmpfs["/var/lib/data"] != "rw" {
		t.Errorf("service host options %+v", h)
	}
	off := false
	o.ServicesPrivileged = &off
	if d.serviceHost().Privileged || !d.buildHost().Privileged {
		t.Error("services_privileged = false must unprivilege the services alone")
	}
	if d.networkHost().Privileged {
		t.Error("the helper container must never be privileged")
	}
}
