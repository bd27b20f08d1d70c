package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validTOML = `
manager_id = "ci-manager-1"
state_dir = "/var/lib/ec2-executor"
[aws]
region = "eu-west-1"
[instance]
ami = "ami-0123456789abcdef0"
types = ["c6i.large", "c5.large"]
subnet_ids = ["subnet-0123456789abcdef0"]
security_group_ids = ["sg-0123456789abcdef0"]
iam_instance_profile = "ci-worker"
tags = { team = "platform" }
[ssh]
user = "runner"
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValidAppliesDefaults(t *testing.T) {
	s, err := LoadValid(write(t, validTOML))
	if err != nil {
		t.Fatal(err)
	}
	if s.Instance.Types[1] != "c5.large" || s.Instance.Market != MarketOnDemand || s.SSH.Port != 22 || s.Instance.MetadataHopLimit != 1 {
		t.Fatalf("unexpected settings: %+v", s)
	}
	if s.Job.BuildsDir != "/builds" || s.SSH.Address != AddressPrivate {
		t.Fatalf("defaults not applied: %+v", s.Job)
	}
}

func TestLoadRejectsUnknownKeysByName(t *testing.T) {
	_, err := Load(write(t, validTOML+"\nsubnet = \"x\"\n[instance.extra]\nfoo = 1\n"))
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"unknown key", "ssh.subnet", "instance.extra.foo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadRejectsWrongTypes(t *testing.T) {
	_, err := Load(write(t, "[ssh]\nport = \"twenty-two\"\n"))
	if err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("want an error naming port, got %v", err)
	}
	_, err = Load(write(t, "[ssh]\nconnect_timeout = \"soon\"\n"))
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("want an error naming the bad duration, got %v", err)
	}
}

func TestValidateReportsEveryProblemWithItsField(t *testing.T) {
	s := Default()
	s.StateDir = "relative"
	s.Instance.AMI = "ubuntu"
	s.Instance.SecurityGroupIDs = []string{"default"}
	s.Instance.MetadataHopLimit = 0
	s.SSH.Address = "elastic"
	s.SSH.User = "root"
	s.Job.BuildsDir = "/"
	err := s.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, field := range []string{"state_dir:", "instance.ami:", "instance.subnet_ids:", "instance.security_group_ids:",
		"instance.metadata_hop_limit:", "ssh.address:", "ssh.user:", "job.builds_dir:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("missing %s in:\n%v", field, err)
		}
	}
}

func TestValidateNamesEachInstanceProblem(t *testing.T) {
	cases := []struct {
		name, field string
		edit        func(*Settings)
	}{
		{"ami and parameter", "instance.ami:", func(s *Settings) { s.Instance.AMIParameter = "/aws/service/x" }},
		{"no image at all", "instance.ami:", func(s *Settings) { s.Instance.AMI = "" }},
		{"bad parameter", "instance.ami_ssm_parameter:", func(s *Settings) { s.Instance.AMI, s.Instance.AMIParameter = "", "no spaces allowed" }},
		{"parameter too long", "instance.ami_ssm_parameter:", func(s *Settings) { s.Instance.AMI, s.Instance.AMIParameter = "", "/"+strings.Repeat("a", 1000) }},
		{"duplicate type", "instance.types:", func(s *Settings) { s.Instance.Types = []string{"c5.large", "c5.large"} }},
		{"bad type", "instance.types:", func(s *Settings) { s.Instance.Types = []string{"big"} }},
		{"no subnet", "instance.subnet_ids:", func(s *Settings) { s.Instance.SubnetIDs = nil }},
		{"bad market", "instance.market:", func(s *Settings) { s.Instance.Market = "cheap" }},
		{"price on demand", "instance.spot_max_price:", func(s *Settings) { s.Instance.SpotMaxPrice = "0.1" }},
		{"bad price", "instance.spot_max_price:", func(s *Settings) { s.Instance.Market, s.Instance.SpotMaxPrice = MarketSpot, "cheap" }},
		{"iops on gp2", "instance.root_volume.iops:", func(s *Settings) { s.Instance.RootVolume = RootVolume{Type: "gp2", IOPS: 3000} }},
		{"throughput on io2", "instance.root_volume.throughput:", func(s *Settings) { s.Instance.RootVolume = RootVolume{Type: "io2", Throughput: 200} }},
		{"kms unencrypted", "instance.root_volume.kms_key_id:", func(s *Settings) { s.Instance.RootVolume.KMSKeyID = "alias/x" }},
		{"template id and name", "instance.launch_template:", func(s *Settings) { s.Instance.LaunchTemplate = LaunchTemplate{ID: "lt-0123456789abcdef0", Name: "ci"} }},
		{"template name too short", "instance.launch_template.name:", func(s *Settings) { s.Instance.LaunchTemplate = LaunchTemplate{Name: "ci"} }},
		{"template name too long", "instance.launch_template.name:", func(s *Settings) {
			s.Instance.LaunchTemplate = LaunchTemplate{Name: strings.Repeat("t", 129)}
		}},
		{"profile name too long", "instance.iam_instance_profile:", func(s *Settings) { s.Instance.IAMInstanceProfile = strings.Repeat("p", 129) }},
		{"user name too long", "ssh.user:", func(s *Settings) { s.SSH.User = strings.Repeat("u", 33) }},
		{"template version", "instance.launch_template.version:", func(s *Settings) { s.Instance.LaunchTemplate = LaunchTemplate{Name: "ci", Version: "newest"} }},
		{"override market", "overrides.markets:", func(s *Settings) { s.Overrides.Markets = []string{"reserved"} }},
		{"ecr host", "worker.ecr_registries:", func(s *Settings) { s.Worker.ECRRegistries = []string{"ecr.example.com"} }},
		{"mirror url", "worker.registry_mirrors:", func(s *Settings) { s.Worker.RegistryMirrors = []string{"mirror.local"} }},
		{"managed daemon key", "worker.daemon_options:", func(s *Settings) { s.Worker.DaemonOptions = map[string]any{"hosts": []string{"tcp://0.0.0.0:2375"}} }},
		{"daemon number as string", `worker.daemon_options: "mtu" must be a number in daemon.json, got the string "1460"`, func(s *Settings) {
			s.Worker.DaemonOptions = map[string]any{"mtu": "1460", "log-driver": "json-file"}
		}},
		{"ipv6 without a subnet", `worker.daemon_options: "ipv6" = true needs "fixed-cidr-v6"`, func(s *Settings) {
			s.Worker.DaemonOptions = map[string]any{"ipv6": true}
		}},
		{"daemon log-opt flat", `worker.daemon_options: "log-opts" must be a table`, func(s *Settings) {
			s.Worker.DaemonOptions = map[string]any{"log-opts": "max-size=50m"}
		}},
		{"io1 without iops", "instance.root_volume.iops: io1 volumes need their IOPS", func(s *Settings) { s.Instance.RootVolume = RootVolume{Type: "io1"} }},
		{"privileged reuse", "pool.max_builds: 3 reuses workers that ran privileged jobs", func(s *Settings) {
			s.Pool.MaxBuilds, s.Docker.Privileged = 3, true
		}},
		{"our own dir", `worker.write_files: entry 0: path "/etc/ec2-executor/merge.json" is under /etc/ec2-executor`, func(s *Settings) {
			s.Worker.WriteFiles = []WriteFile{{Path: "/etc/ec2-executor/merge.json"}}
		}},
		{"relative file", "worker.write_files:", func(s *Settings) { s.Worker.WriteFiles = []WriteFile{{Path: "etc/x"}} }},
		{"negative grace", "reap.grace_period:", func(s *Settings) { s.Reap.GracePeriod = Duration{-1} }},
		{"in-job ECR with hop limit 1", "registry.in_job_ecr: needs instance.metadata_hop_limit", func(s *Settings) {
			s.Registry.InJobECR, s.Worker.ECRRegistries = true, []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com"}
		}},
		{"in-job ECR without registries", "registry.in_job_ecr: needs worker.ecr_registries", func(s *Settings) {
			s.Registry.InJobECR, s.Instance.MetadataHopLimit = true, 2
		}},
		{"bad rewrite", "registry.rewrites:", func(s *Settings) { s.Registry.Rewrites = []Rewrite{{Prefix: "docker.io/", Replacement: "bad space/"}} }},
		{"bad ecr mode", "registry.ecr:", func(s *Settings) { s.Registry.ECR = "both" }},
		{"bad pull policy", "docker.pull_policy:", func(s *Settings) { s.Docker.PullPolicy = []string{"sometimes"} }},
		{"bad volume", "docker.volumes:", func(s *Settings) { s.Docker.Volumes = []string{"/a:relative"} }},
		{"bad memory", "docker.memory:", func(s *Settings) { s.Docker.Memory = "lots" }},
		{"idle workers of instance.types' own architecture", "pool.x86_64.idle_count: instance.types are x86_64", func(s *Settings) { s.Pool.X86_64.IdleCount = 1 }},
		{"idle workers of an architecture with no image", "pool.arm64.idle_count: no arm64 image", func(s *Settings) { s.Pool.ARM64.IdleCount = 1 }},
		{"breaker without a window", "instance.spot_interruptions_window:", func(s *Settings) { s.Instance.SpotInterruptionsWindow = Duration{} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Load(write(t, validTOML))
			if err != nil {
				t.Fatal(err)
			}
			c.edit(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("want an error naming %s, got %v", c.field, err)
			}
		})
	}
}

func TestLaunchTemplateMakesImageTypesAndSubnetsOptional(t *testing.T) {
	s, err := Load(write(t, validTOML))
	if err != nil {
		t.Fatal(err)
	}
	s.Instance.AMI, s.Instance.Types, s.Instance.SubnetIDs = "", nil, nil
	s.Instance.LaunchTemplate = LaunchTemplate{Name: "ci-workers", Version: "$Latest"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejectsReservedTagPrefix(t *testing.T) {
	s, err := Load(write(t, validTOML))
	if err != nil {
		t.Fatal(err)
	}
	s.Instance.Tags = map[string]string{"ec2-executor:job-key": "spoof"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "instance.tags") {
		t.Fatalf("want instance.tags error, got %v", err)
	}
}

// TestReferenceDocumentsEveryKey fails when a settings key is missing from docs/settings.md.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/settings.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/settings.md does not document `%s`", key)
		}
	}
}

func TestKeysWalksNestedTables(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, want := range []string{"manager_id", "aws.endpoint", "instance.security_group_ids", "ssh.connect_timeout", "job.cache_dir"} {
		if !strings.Contains(keys, want) {
			t.Errorf("Keys() lacks %s: %s", want, keys)
		}
	}
	if strings.Contains(keys, "Duration") {
		t.Errorf("Keys() descended into Duration: %s", keys)
	}
}

func TestLoadReportsEveryProblemOnceWithASuggestion(t *testing.T) {
	_, err := Load(write(t, validTOML+"\n[pool]\nidle_cont = 3\nidle_time = 5\n[reap]\nintervall = \"5m\"\n"+
		"[docker]\nprivileged = \"yes\"\n"))
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{"pool.idle_cont: unknown key (did you mean pool.idle_count?)", "pool.idle_time:",
		"reap.intervall: unknown key (did you mean reap.interval?)", "docker.privileged:"} {
		if strings.Count(msg, want) != 1 {
			t.Errorf("want %q once in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line ") {
		t.Errorf("positions in a document the user never wrote:\n%s", msg)
	}
}

func TestAStoppedPoolNeedsOnDemandWorkers(t *testing.T) {
	s := Default()
	s.Instance.Market = MarketSpot
	s.Pool.StoppedCount = 2
	if err := s.Pool.validateErr(s.Instance.Market); err == nil || !strings.Contains(err.Error(), "cannot start a stopped spot instance") {
		t.Fatalf("got %v", err)
	}
	s.Instance.Market = MarketOnDemand
	if err := s.Pool.validateErr(s.Instance.Market); err != nil {
		t.Fatal(err)
	}
}

func TestTheLastMatchingScheduleEntryWins(t *testing.T) {
	p := Default().Pool
	p.IdleCount, p.StoppedCount = 1, 0
	p.Schedule = []PoolSchedule{
		{Periods: []string{"* 8-17 * * mon-fri"}, Timezone: "Europe/Berlin", IdleCount: 10, StoppedCount: 2},
		{Periods: []string{"* * 12-13 * * wed"}, Timezone: "Europe/Berlin", IdleCount: 20, IdleTime: Duration{5 * time.Minute}},
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, c := range []struct {
		at            time.Time
		idle, stopped int
		idleTime      time.Duration
	}{
		{time.Date(2026, 12, 1, 9, 30, 0, 0, berlin), 10, 2, 30 * time.Minute},   // Tuesday morning
		{time.Date(2026, 12, 2, 12, 15, 0, 0, berlin), 20, 0, 5 * time.Minute},   // Wednesday lunch: the later entry
		{time.Date(2026, 12, 1, 7, 59, 0, 0, time.UTC), 10, 2, 30 * time.Minute}, // 08:59 in Berlin
		{time.Date(2026, 12, 5, 10, 0, 0, 0, berlin), 1, 0, 30 * time.Minute},    // Saturday: the [pool] values
	} {
		idle, stopped, idleTime := p.PoolSize(c.at)
		if idle != c.idle || stopped != c.stopped || idleTime != c.idleTime {
			t.Errorf("%s: %d idle, %d stopped, idle_time %s", c.at, idle, stopped, idleTime)
		}
	}
	p.Schedule = append(p.Schedule, PoolSchedule{Periods: []string{"every tuesday"}, Timezone: "Mars/Olympus"})
	err := p.validateErr(MarketOnDemand)
	for _, want := range []string{`pool.schedule[2].periods: "every tuesday" is not a cron expression`, `pool.schedule[2].timezone: "Mars/Olympus"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// TestHostPlaceholderInManagerID: "{host}" becomes the host's name when settings
// are loaded, so one file serves every manager host with an id of its own.
func TestHostPlaceholderInManagerID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.toml")
	if err := os.WriteFile(p, []byte(`manager_id = "{host}-small"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	host, _ := os.Hostname()
	if err != nil || s.ManagerID != host+"-small" {
		t.Errorf("manager_id %q (%v), want %q", s.ManagerID, err, host+"-small")
	}
}

// TestIdleFollowsDemand: idle = max(idle_count, min(ceil(factor × in use), limit)),
// within what max_instances leaves, and a schedule entry's factor replaces the
// pool's in its periods, as docker-autoscaler's policies do.
func TestIdleFollowsDemand(t *testing.T) {
	p := Default().Pool
	p.IdleCount, p.ScaleFactor, p.ScaleFactorLimit, p.MaxInstances = 2, 0.5, 10, 40
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for inUse, want := range map[int]int{0: 2, 3: 2, 5: 3, 11: 6, 30: 10, 35: 5, 40: 0} {
		if got := p.IdleWanted(at, inUse); got != want {
			t.Errorf("%d in use: %d idle, want %d", inUse, got, want)
		}
	}
	p.Schedule = []PoolSchedule{{Periods: []string{"* 0-6 * * *"}, Timezone: "UTC", IdleCount: 0, ScaleFactor: 1}}
	if got := p.IdleWanted(time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC), 4); got != 4 {
		t.Errorf("at night with factor 1 and 4 in use: %d idle", got)
	}
	p.ScaleFactor = 0
	if got := p.IdleWanted(at, 30); got != 2 {
		t.Errorf("without a factor: %d idle, want the idle count", got)
	}
}

func TestArchOfInstanceTypes(t *testing.T) {
	for typ, want := range map[string]string{"t4g.micro": ArchARM, "m7g.large": ArchARM, "c6gn.xlarge": ArchARM, "m6gd.large": ArchARM,
		"im4gn.large": ArchARM, "g5g.xlarge": ArchARM, "a1.large": ArchARM, "t3.micro": ArchX86, "m7i-flex.large": ArchX86,
		"g5.xlarge": ArchX86, "c6i.large": ArchX86, "inf2.xlarge": ArchX86} {
		if got := ArchOf(typ); got != want {
			t.Errorf("ArchOf(%s) = %s, want %s", typ, got, want)
		}
	}
}

// validate refuses types of two architectures together, a section of the other
// architecture without an image or with a type of the wrong one, and an override
// of an architecture that has no image.
func TestArchitecturesAreValidated(t *testing.T) {
	s := Default()
	s.Instance.AMI, s.Instance.SubnetIDs = "ami-0123456789abcdef0", []string{"subnet-0123456789abcdef0"}
	s.Instance.Types = []string{"c6i.large", "c7g.large"}
	s.Instance.ARM64 = ArchImage{Types: []string{"m7g.large", "m6i.large"}}
	s.Overrides.Architectures = []string{"arm64", "sparc"}
	s.Overrides.InstanceTypes = []string{"t4g.large"}
	err := s.Validate()
	for _, want := range []string{"instance.types: mix architectures (c6i.large is x86_64, c7g.large is arm64)",
		"instance.arm64: needs ami or ami_ssm_parameter", "instance.arm64.types: m6i.large is x86_64, not arm64",
		`overrides.architectures: entry 1 "sparc"`, "overrides.architectures: arm64: no arm64 image",
		"overrides.instance_types: t4g.large is arm64: set instance.arm64.ami"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	s.Instance.Types = []string{"c6i.large"}
	s.Instance.ARM64 = ArchImage{AMIParameter: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64", Types: []string{"m7g.large"}}
	s.Overrides.Architectures = []string{"arm64"}
	if err := s.Validate(); err != nil {
		t.Fatalf("a good arm64 section: %v", err)
	}
}
