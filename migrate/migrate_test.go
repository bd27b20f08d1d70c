package migrate

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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
		"gitlab-aws-autoscaler: MaxBuilds: mapped with a change (pool.max_builds = 1, not 10: the runner's jobs are privileged",
		"gitlab-aws-autoscaler: autoscaling: mapped with a change",
		"gitlab-aws-autoscaler: limit: mapped with a change",
		"gitlab-aws-autoscaler: docker.disable_cache: mapped with a change (not needed",
		"gitlab-aws-autoscaler: docker.image: mapped",
		"gitlab-aws-autoscaler: docker.privileged: mapped",
		"gitlab-aws-autoscaler: docker.shm_size: mapped",
		"gitlab-aws-autoscaler: docker.volumes: mapped",
		`gitlab-aws-autoscaler: (manager id): mapped with a change (manager_id = "{host}": {host} is this host's name`,
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
	host, _ := os.Hostname()
	if s.ManagerID != host || s.StateDir != "/var/lib/ec2-executor/gitlab-aws-autoscaler" {
		t.Errorf("a lone runner keeps the host-derived id, and its pool unit's state_dir: %q %q", s.ManagerID, s.StateDir)
	}
	var next strings.Builder
	r.PrintNext(&next, out, "/etc/ec2-executor")
	if !strings.Contains(next.String(), "systemctl enable --now ec2-executor-pool@gitlab-aws-autoscaler.service") {
		t.Errorf("migrate's next steps:\n%s", next.String())
	}
	if p.IdleCount != 1 || p.IdleTime.Duration.Minutes() != 30 || p.MaxBuilds != 1 || p.MaxInstances != 70 || len(p.Schedule) != 2 ||
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
		"large: IdleScaleFactor: mapped with a change (pool.scale_factor = 0.5", "large: IdleCount: mapped with a change (pool.scale_factor_limit = 6",
		"large: IdleCountMin: mapped (pool.idle_count = 1",
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
	if small.ManagerID == large.ManagerID || small.StateDir == large.StateDir || small.Pool.IdleCount != 2 || small.Pool.MaxInstances != 12 || large.Pool.MaxInstances != 26 ||
		large.Pool.ScaleFactor != 0.5 || large.Pool.ScaleFactorLimit != 6 || large.Pool.IdleCount != 1 ||
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

// TestTerraformShapedRunners: two runners whose names collide as file names, flags
// written =false, engine options as dockerd flags, OffPeak settings and a dated
// period: each becomes what it says, and the report says what the output holds.
func TestTerraformShapedRunners(t *testing.T) {
	r, out := run(t, "testdata/terraform-two-runners.toml", "", nil)
	got := lines(r)
	for _, w := range []string{
		`CI Runner Small: name: mapped with a change (its settings are ci-runner-small-2.toml: ci-runner-small.toml is another runner's`,
		`ci-runner small: amazonec2-request-spot-instance: mapped (instance.market = "on-demand")`,
		`ci-runner small: amazonec2-monitoring: mapped (instance.detailed_monitoring = false)`,
		`ci-runner small: amazonec2-use-ebs-optimized-instance: mapped (instance.ebs_optimized = false)`,
		`ci-runner small: amazonec2-use-private-address: mapped (ssh.address = "public")`,
		`ci-runner small: amazonec2-tags: mapped with a change (instance.tags: the last item "orphan" has no value and was dropped; ec2-executor sets each worker's Name tag`,
		`ci-runner small: engine-opt=log-opt max-size=50m: mapped (worker.daemon_options "log-opts")`,
		`ci-runner small: engine-opt=mtu=1460: mapped (worker.daemon_options "mtu")`,
		`ci-runner small: engine-opt=frobnicate=yes: not supported`,
		`ci-runner small: docker.wait_for_services_timeout: not supported (-1 (do not wait) has no counterpart`,
		`ci-runner small: MaxGrowthRate: mapped with a change (no counterpart for machines created at once: pool.launches_per_second (1)`,
		`ci-runner small: OffPeakPeriods, OffPeakIdleCount, OffPeakIdleTime, OffPeakTimezone: mapped with a change (one [[pool.schedule]] entry`,
		`ci-runner small: amazonec2-root-size (not set): mapped with a change (instance.root_volume.size_gib = 16`,
		`ci-runner small: amazonec2-metadata-token (not set): mapped with a change (docker-machine's default allows IMDSv1`,
		`ci-runner small: amazonec2-ami (not set): mapped with a change (docker-machine's default AMI is Ubuntu's`,
		`CI Runner Small: amazonec2-request-spot-instance: mapped with a change (instance.market = "spot-or-on-demand"`,
		`CI Runner Small: amazonec2-use-ebs-optimized-instance: not supported ("yes-please" is not true or false`,
		`CI Runner Small: MaxBuilds: mapped with a change (pool.max_builds = 1, not 100: the runner's jobs are privileged`,
		`CI Runner Small: autoscaling: mapped with a change (1 [[pool.schedule]] entries; the year field of "* * 9-17 * * mon-fri 2025" was dropped`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
	small, large := filledAndValid(t, out, "ci-runner-small.toml"), filledAndValid(t, out, "ci-runner-small-2.toml")
	host, _ := os.Hostname()
	if small.ManagerID != host+"-ci-runner-small" || large.ManagerID != host+"-ci-runner-small-2" || small.StateDir == large.StateDir {
		t.Errorf("ids %q %q, state %q %q: each runner needs its own", small.ManagerID, large.ManagerID, small.StateDir, large.StateDir)
	}
	in := small.Instance
	if in.Market != settings.MarketOnDemand || in.DetailedMonitoring || in.EBSOptimized || small.SSH.Address != settings.AddressPublic ||
		in.RootVolume.SizeGiB != 16 || in.Tags["team"] != "platform" || len(in.Tags) != 2 || small.Pool.MaxBuilds != 20 {
		t.Errorf("small's instance %+v, ssh %+v", in, small.SSH)
	}
	if large.Instance.Market != settings.MarketSpotFallback || !large.Instance.DetailedMonitoring || large.Instance.EBSOptimized || large.Pool.MaxBuilds != 1 {
		t.Errorf("large's instance %+v", large.Instance)
	}
	d := small.Worker.DaemonOptions
	logOpts, _ := d["log-opts"].(map[string]any)
	ulimits, _ := d["default-ulimits"].(map[string]any)
	if logOpts["max-size"] != "50m" || logOpts["max-file"] != "3" || d["mtu"] != int64(1460) || d["ipv6"] != true || ulimits["nofile"] == nil || d["frobnicate"] != nil {
		t.Errorf("daemon options %#v", d)
	}
	if small.Docker.WaitForServicesTimeout.Duration.Seconds() != 30 || len(small.Pool.Schedule) != 1 || small.Pool.Schedule[0].Periods[0] != "* * 0-7,19-23 * * mon-fri" ||
		small.Pool.Schedule[0].Timezone != "Europe/Amsterdam" || large.Pool.Schedule[0].Periods[0] != "* * 9-17 * * mon-fri" {
		t.Errorf("small docker %+v pool %+v", small.Docker, small.Pool.Schedule)
	}
}

// TestEveryFixtureValidatesOnceFilledIn: what migrate writes passes validate once
// the placeholders it asks the operator to fill are filled.
func TestEveryFixtureValidatesOnceFilledIn(t *testing.T) {
	fixtures, _ := filepath.Glob("testdata/*.toml")
	for _, f := range fixtures {
		_, out := run(t, f, "", nil)
		files, _ := filepath.Glob(filepath.Join(out, "*.toml"))
		for _, s := range files {
			if filepath.Base(s) != "config.toml" {
				filledAndValid(t, out, filepath.Base(s))
			}
		}
	}
}

// filledAndValid fills the security-group placeholders as an operator would, then
// loads and validates the settings file.
func filledAndValid(t *testing.T, dir, name string) settings.Settings {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	filled := regexp.MustCompile(`sg-REPLACE-ME-[A-Za-z0-9-]+`).ReplaceAllString(string(b), "sg-0123456789abcdef0")
	if err := os.WriteFile(p, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := settings.LoadValid(p)
	if err != nil {
		t.Errorf("%s does not validate once its placeholders are filled: %v", name, err)
	}
	return s
}

func TestMigrateNeverOverwritesWithoutForce(t *testing.T) {
	out := t.TempDir()
	o := Options{RunnerConfig: "testdata/two-machine-runners.toml", Out: out, SettingsDir: "/etc/ec2-executor", Binary: "/usr/local/bin/ec2-executor"}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "small.toml"), []byte("# edited by the operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "already holds config.toml, large.toml, small.toml: migrate never overwrites a file (--force replaces them)") {
		t.Fatalf("a second run: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "small.toml")); string(b) != "# edited by the operator\n" {
		t.Error("the operator's file was overwritten")
	}
	o.Force = true
	if _, err := Run(context.Background(), o); err != nil {
		t.Errorf("with --force: %v", err)
	}
}
