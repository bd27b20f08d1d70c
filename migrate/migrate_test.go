package migrate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ec2-executor/ec2-executor/settings"
)

func run(t *testing.T, input, runner string, resolve GroupResolver) (*Report, string) {
	t.Helper()
	out := t.TempDir()
	before, _ := os.ReadFile(input)
	r, err := Run(context.Background(), Options{RunnerConfig: input, Runner: runner, Out: out, SettingsDir: "/etc/ec2-executor",
		Binary: "/usr/local/bin/ec2-executor", Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(input); string(after) != string(before) {
		t.Fatal("migrate changed its input")
	}
	return r, out
}

// lines renders the report, one option a line.
func lines(r *Report) string {
	var b strings.Builder
	r.Print(&b)
	return b.String()
}

func TestTheAWSAutoscalingGuideConfig(t *testing.T) {
	resolve := func(_ context.Context, region, name, vpc string) string {
		if region == "us-east-1" && name == "docker-machine-scaler" && vpc == "vpc-0123456789abcdef0" {
			return "sg-0aaaaaaaaaaaaaaa1"
		}
		return ""
	}
	r, out := run(t, "testdata/aws-autoscaling.toml", "", resolve)
	got := lines(r)
	want := []string{
		"gitlab-aws-autoscaler: amazonec2-access-key: not supported (static AWS keys are never copied",
		"gitlab-aws-autoscaler: amazonec2-secret-key: not supported (static AWS keys are never copied",
		"gitlab-aws-autoscaler: amazonec2-region: mapped",
		"gitlab-aws-autoscaler: amazonec2-vpc-id: mapped with a change (the VPC and zone follow from instance.subnet_ids)",
		"gitlab-aws-autoscaler: amazonec2-subnet-id: mapped with a change",
		"gitlab-aws-autoscaler: amazonec2-zone: mapped with a change",
		"gitlab-aws-autoscaler: amazonec2-use-private-address: mapped",
		"gitlab-aws-autoscaler: amazonec2-tags: mapped",
		"gitlab-aws-autoscaler: amazonec2-security-group=docker-machine-scaler: mapped with a change (resolved to sg-0aaaaaaaaaaaaaaa1 through EC2)",
		"gitlab-aws-autoscaler: amazonec2-instance-type: mapped with a change",
		"gitlab-aws-autoscaler: amazonec2-ami: mapped",
		"gitlab-aws-autoscaler: amazonec2-root-size: mapped",
		"gitlab-aws-autoscaler: amazonec2-iam-instance-profile: mapped",
		"gitlab-aws-autoscaler: amazonec2-metadata-token: mapped",
		"gitlab-aws-autoscaler: amazonec2-metadata-token-response-hop-limit: mapped",
		"gitlab-aws-autoscaler: engine-registry-mirror: mapped",
		"gitlab-aws-autoscaler: IdleCount: mapped with a change",
		"gitlab-aws-autoscaler: IdleTime: mapped",
		"gitlab-aws-autoscaler: MachineName: mapped with a change",
		"gitlab-aws-autoscaler: MaxBuilds: mapped with a change",
		"gitlab-aws-autoscaler: autoscaling: mapped with a change",
		"gitlab-aws-autoscaler: limit: mapped with a change",
		"gitlab-aws-autoscaler: docker.disable_cache: mapped with a change (not needed",
		"gitlab-aws-autoscaler: docker.image: mapped",
		"gitlab-aws-autoscaler: docker.privileged: mapped",
		"gitlab-aws-autoscaler: docker.shm_size: mapped",
		"gitlab-aws-autoscaler: docker.volumes: mapped",
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n"); n != len(want) {
		t.Errorf("%d lines, want one per option (%d):\n%s", n, len(want), got)
	}
	s, err := settings.LoadValid(filepath.Join(out, "gitlab-aws-autoscaler.toml"))
	if err != nil {
		t.Fatalf("the generated settings do not validate: %v", err)
	}
	in := s.Instance
	if s.AWS.Region != "us-east-1" || in.AMI != "ami-0123456789abcdef0" || in.AMIParameter != "" || in.Types[0] != "m4.2xlarge" ||
		in.SubnetIDs[0] != "subnet-0123456789abcdef0" || in.SecurityGroupIDs[0] != "sg-0aaaaaaaaaaaaaaa1" || in.RootVolume.SizeGiB != 64 ||
		in.IAMInstanceProfile != "gitlab-ci-worker" || in.MetadataHopLimit != 2 || in.Tags["runner-manager-name"] != "gitlab-aws-autoscaler" {
		t.Errorf("instance settings %+v", in)
	}
	p := s.Pool
	if p.IdleCount != 1 || p.IdleTime.Duration.Minutes() != 30 || p.MaxBuilds != 10 || p.MaxInstances != 70 || len(p.Schedule) != 2 ||
		p.Schedule[0].Periods[0] != "* * 9-17 * * mon-fri" || p.Schedule[0].IdleCount != 50 {
		t.Errorf("pool settings %+v", p)
	}
	if s.Job.DefaultImage != "alpine" || !s.Docker.Privileged || s.Docker.ShmSize != "268435456" || s.Worker.RegistryMirrors[0] != "https://mirror.example.com" {
		t.Errorf("job and docker settings %+v %+v", s.Job, s.Docker)
	}
	assertNoSecrets(t, out, "AKIAEXAMPLEKEY000000", "example-secret-key-never-copied")
	assertCustomRunner(t, filepath.Join(out, "config.toml"), "gitlab-aws-autoscaler", "/etc/ec2-executor/gitlab-aws-autoscaler.toml")
}

func TestASpotRunnerNextToAShellOne(t *testing.T) {
	r, out := run(t, "testdata/spot-and-shell.toml", "", nil)
	got := lines(r)
	for _, w := range []string{
		`Spot Runner #1: amazonec2-request-spot-instance: mapped with a change (instance.market = "spot-or-on-demand"`,
		"Spot Runner #1: amazonec2-spot-price: mapped",
		"Spot Runner #1: amazonec2-block-duration-minutes: not supported (EC2 no longer offers spot blocks)",
		"Spot Runner #1: amazonec2-userdata: not supported",
		"Spot Runner #1: amazonec2-security-group=ci: mapped with a change (ec2-executor takes group ids and names were not resolved (migrate --resolve-security-groups asks EC2)",
		"Spot Runner #1: docker.tls_verify: mapped with a change (not needed",
		"Spot Runner #1: docker.pull_policy: mapped",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "shell:") {
		t.Errorf("the shell runner was touched:\n%s", got)
	}
	_, err := settings.LoadValid(filepath.Join(out, "spot-runner-1.toml"))
	if err == nil || !strings.Contains(err.Error(), "sg-REPLACE-ME-ci") {
		t.Errorf("validate must reject the unresolved group's placeholder, got %v", err)
	}
	assertCustomRunner(t, filepath.Join(out, "config.toml"), "Spot Runner #1", "/etc/ec2-executor/spot-runner-1.toml")
}

func TestOneRunnerByNameAndNoneToMigrate(t *testing.T) {
	_, err := Run(context.Background(), Options{RunnerConfig: "testdata/spot-and-shell.toml", Runner: "shell", Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `no runner with executor "docker+machine" and MachineDriver "amazonec2" named shell`) {
		t.Fatalf("got %v", err)
	}
}

func assertNoSecrets(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds a static AWS key", e.Name())
			}
		}
	}
}

// assertCustomRunner checks the new runner config calls ec2-executor for runner and
// keeps its url, token and cache.
func assertCustomRunner(t *testing.T, path, runner, settingsPath string) {
	t.Helper()
	var cfg struct {
		Concurrent int
		Runners    []struct {
			Name, URL, Token, Executor string
			Cache                      map[string]any `toml:"cache"`
			Machine                    map[string]any `toml:"machine"`
			Custom                     struct {
				ConfigExec string   `toml:"config_exec"`
				ConfigArgs []string `toml:"config_args"`
				RunArgs    []string `toml:"run_args"`
			} `toml:"custom"`
		}
	}
	if _, err := toml.DecodeFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Runners {
		if r.Name != runner {
			continue
		}
		if r.Executor != "custom" || r.Machine != nil || r.Token == "" || r.URL == "" || r.Custom.ConfigExec != "/usr/local/bin/ec2-executor" ||
			strings.Join(r.Custom.ConfigArgs, " ") != "--config "+settingsPath+" config" || strings.Join(r.Custom.RunArgs, " ") != "--config "+settingsPath+" run" {
			t.Errorf("runner %s: %+v", runner, r)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the runner config holds tokens: mode %v", fi.Mode())
		}
		return
	}
	t.Errorf("runner %s missing from %s", runner, path)
}

func TestTwoMachineRunnersInOneFile(t *testing.T) {
	r, out := run(t, "testdata/two-machine-runners.toml", "", nil)
	got := lines(r)
	for _, w := range []string{"small: amazonec2-region: mapped", "large: amazonec2-volume-type: mapped", "large: docker.memory: mapped",
		"large: autoscaling: mapped with a change"} {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
	small, err := settings.LoadValid(filepath.Join(out, "small.toml"))
	if err != nil {
		t.Fatal(err)
	}
	large, err := settings.LoadValid(filepath.Join(out, "large.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if small.ManagerID == large.ManagerID || small.Pool.IdleCount != 2 || small.Pool.MaxInstances != 12 || large.Pool.MaxInstances != 24 ||
		large.Pool.Schedule[0].Timezone != "Europe/Berlin" || large.Instance.RootVolume.Type != "gp3" || large.Docker.Memory != "8g" {
		t.Errorf("small %+v\nlarge %+v", small.Pool, large.Pool)
	}
	assertCustomRunner(t, filepath.Join(out, "config.toml"), "small", "/etc/ec2-executor/small.toml")
	assertCustomRunner(t, filepath.Join(out, "config.toml"), "large", "/etc/ec2-executor/large.toml")

	r, out = run(t, "testdata/two-machine-runners.toml", "large", nil)
	if strings.Contains(lines(r), "small:") {
		t.Errorf("--runner large touched small:\n%s", lines(r))
	}
	if _, err := os.Stat(filepath.Join(out, "small.toml")); err == nil {
		t.Error("--runner large wrote settings for small")
	}
}
