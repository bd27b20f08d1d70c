//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// al2023 is moto's copy of the public Amazon Linux 2023 parameter; it names stack.AMI.
const al2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

func TestEveryLaunchOptionArrivesInEC2(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	cfg := settingsFile(t, "launch-options.toml", proxy.URL, func(s *settings.Settings) {
		in := &s.Instance
		in.AMI, in.AMIParameter = "", al2023
		in.Types = []string{"t3.micro"}
		in.Market = settings.MarketSpot
		in.SpotMaxPrice = "0.05"
		in.EBSOptimized, in.DetailedMonitoring = true, true
		in.MetadataHopLimit = 2
		in.RootVolume = settings.RootVolume{SizeGiB: 30, Type: "gp3", Encrypted: true}
		in.Tags["team"] = "platform"
		s.Overrides.InstanceTypes = []string{"t3.small"}
	})
	job := baseJob(3001)
	job.Variables = []runnersim.Variable{{Key: "EC2_EXECUTOR_INSTANCE_TYPE", Value: "t3.small", Public: true}}
	job.Script = []string{"echo launched"}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "Using AMI "+stack.AMI+" from SSM parameter "+al2023, "Launching t3.small in "+st.Seed.Subnet+" (spot)")
	in := bootedFor(t, res)
	d := stack.Describe(in)
	for _, want := range []string{"type=t3.small", "subnet=" + st.Seed.Subnet, st.Seed.SecurityGroup, "instance-profile/" + st.Seed.InstanceProfile,
		"http_tokens=required hop_limit=2", "team=platform", "environment=local-stack", "ec2-executor:expires-at=", "ec2-executor:job-id=3001"} {
		if !strings.Contains(d, want) {
			t.Errorf("moto's view lacks %q:\n%s", want, d)
		}
	}
	if aws.ToString(in.ImageId) != stack.AMI || in.InstanceLifecycle != types.InstanceLifecycleTypeSpot ||
		!aws.ToBool(in.EbsOptimized) || in.Monitoring.State != types.MonitoringStateEnabled {
		t.Errorf("image %s, lifecycle %q, ebs-optimized %v, monitoring %v", aws.ToString(in.ImageId), in.InstanceLifecycle, aws.ToBool(in.EbsOptimized), in.Monitoring.State)
	}
	vols := st.Boot.Volumes(aws.ToString(in.InstanceId))
	if len(vols) != 1 || aws.ToInt32(vols[0].Size) != 30 || vols[0].VolumeType != types.VolumeTypeGp3 || !aws.ToBool(vols[0].Encrypted) {
		t.Errorf("root volume as moto holds it: %+v", vols)
	}
	counts := proxy.Counts()
	if counts["GetParameter"] != 1 || counts["DescribeImages"] != 1 || counts["RunInstances"] != 1 {
		t.Errorf("calls %v: want one GetParameter (AMI), one DescribeImages (root device), one RunInstances", counts)
	}
}

func TestCapacityErrorsFallBackAcrossTypesAndSubnets(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	// Only t3.micro in the second subnet has capacity.
	proxy.SetFault(func(action string, form url.Values, w http.ResponseWriter) bool {
		if action != "RunInstances" || form.Get("InstanceType") == "t3.micro" && form.Get("SubnetId") == st.Seed.Subnet2 {
			return false
		}
		stack.EC2Error(w, http.StatusInternalServerError, "InsufficientInstanceCapacity",
			"We currently do not have sufficient "+form.Get("InstanceType")+" capacity in the Availability Zone you requested.")
		return true
	})
	cfg := settingsFile(t, "fallback.toml", proxy.URL, func(s *settings.Settings) {
		s.Instance.Types = []string{"c5.large", "t3.micro"}
		s.Instance.SubnetIDs = []string{st.Seed.Subnet, st.Seed.Subnet2}
	})
	job := baseJob(3002)
	job.Script = []string{"echo ran after fallback"}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	s1, s2 := st.Seed.Subnet, st.Seed.Subnet2
	contains(t, res.Log, "ran after fallback",
		"No capacity for c5.large in "+s1+" (on-demand) (InsufficientInstanceCapacity); trying c5.large in "+s2+" (on-demand)",
		"No capacity for c5.large in "+s2+" (on-demand) (InsufficientInstanceCapacity); trying t3.micro in "+s1+" (on-demand)",
		"No capacity for t3.micro in "+s1+" (on-demand) (InsufficientInstanceCapacity); trying t3.micro in "+s2+" (on-demand)")
	in := bootedFor(t, res)
	if in.InstanceType != "t3.micro" || aws.ToString(in.SubnetId) != s2 || !strings.HasPrefix(aws.ToString(in.PrivateIpAddress), "127.0.2.") {
		t.Errorf("launched %s in %s (%s)", in.InstanceType, aws.ToString(in.SubnetId), aws.ToString(in.PrivateIpAddress))
	}
	// HTTP 500 capacity errors are not retried by the SDK: one call per choice.
	if n := proxy.Counts()["RunInstances"]; n != 4 {
		t.Errorf("RunInstances called %d times, want 4 (one per choice)", n)
	}
}

func TestSpotWithoutCapacityFallsBackToOnDemand(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	proxy.SetFault(func(action string, form url.Values, w http.ResponseWriter) bool {
		if action != "RunInstances" || form.Get("InstanceMarketOptions.MarketType") != "spot" {
			return false
		}
		stack.EC2Error(w, http.StatusBadRequest, "InsufficientInstanceCapacity", "There is no Spot capacity available that matches your request.")
		return true
	})
	cfg := settingsFile(t, "spot-fallback.toml", proxy.URL, func(s *settings.Settings) {
		s.Instance.Market = settings.MarketSpotFallback
	})
	job := baseJob(3003)
	job.Script = []string{"echo on demand"}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "No capacity for t3.micro in "+st.Seed.Subnet+" (spot) (InsufficientInstanceCapacity); trying t3.micro in "+st.Seed.Subnet+" (on-demand)",
		"(t3.micro, on-demand) running")
	if in := bootedFor(t, res); in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		t.Error("the fallback instance is spot")
	}
}

func TestOverrideOutsideTheAllowListFailsBeforeAnyEC2Call(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	cfg := settingsFile(t, "overrides.toml", proxy.URL, func(s *settings.Settings) {
		s.Overrides.InstanceTypes = []string{"t3.micro", "t3.small"}
	})
	job := baseJob(3004)
	job.Variables = []runnersim.Variable{{Key: "EC2_EXECUTOR_INSTANCE_TYPE", Value: "p5.48xlarge", Public: true}}
	job.Script = []string{"echo unreachable"}
	res := runJob(t, job, cfg)
	if res.FailureReason != "script_failure" || res.PrepareAttempts != 1 {
		t.Fatalf("got %s/%s after %d attempts, want a build failure without retries", res.Status, res.FailureReason, res.PrepareAttempts)
	}
	contains(t, res.Log, `CI variable EC2_EXECUTOR_INSTANCE_TYPE="p5.48xlarge" is not allowed: the instance type must be one of t3.micro, t3.small`)
	if counts := proxy.Counts(); len(counts) != 0 {
		t.Errorf("AWS was called: %v", counts)
	}
	record(t, "bad input", "CI variable override outside the allow-list", saw(res, "CI variable EC2_EXECUTOR_INSTANCE_TYPE=\"p5.48xlarge\" is not allowed: …")+", zero AWS calls")
}

// TestHappyPathEC2CallBudget reports the AWS calls one job costs (the README quotes
// it). A fresh manager's first launch also asks EC2 once about its instance type
// and AMI (their architectures, kept for every later launch): the second job does
// not.
func TestHappyPathEC2CallBudget(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	cfg := settingsFile(t, "budget.toml", proxy.URL, func(s *settings.Settings) {
		s.StateDir = t.TempDir() // a fresh manager: its cleanup also runs the reaper
	})
	for i, firstLookups := range []int{1, 0} {
		job := baseJob(3005 + i*10)
		job.Script = []string{"echo cheap"}
		from := time.Now()
		if res := runJob(t, job, cfg); res.Status != "success" {
			t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
		}
		counts := proxy.CountsBetween(from, time.Now())
		t.Logf("AWS calls for job %d (including one reaper pass on the first): %v", i+1, counts)
		lookups := counts["DescribeInstanceTypes"] + counts["DescribeImages"]
		if counts["RunInstances"] != 1 || counts["TerminateInstances"] != 1 || counts["DescribeInstances"] > 3 ||
			counts["DescribeInstanceTypes"] != firstLookups || counts["DescribeImages"] != firstLookups || len(counts) != 3+min(lookups, 2) {
			t.Errorf("job %d: calls %v: want 1 RunInstances, at most 3 DescribeInstances (wait, cleanup's lookup by tags, reaper), 1 TerminateInstances, and %d DescribeInstanceTypes and DescribeImages",
				i+1, counts, firstLookups)
		}
	}
}

func TestWorkerPullsADockerHubNameThroughItsRegistryMirror(t *testing.T) {
	cfg := settingsFile(t, "mirror.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Worker.RegistryMirrors = []string{"http://" + stack.NSMirrorAddr}
		s.Worker.DaemonOptions = map[string]any{"max-concurrent-downloads": 2}
	})
	job := baseJob(3006)
	job.Image = stack.MirrorImage
	job.Script = []string{"echo pulled through the mirror"}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "pulled through the mirror")
	daemon, mirrorLog, ok := st.Boot.PrivateDocker(aws.ToString(bootedFor(t, res).InstanceId))
	if !ok {
		t.Fatal("the worker did not get its own dockerd")
	}
	var merged struct {
		Mirrors   []string `json:"registry-mirrors"`
		Downloads int      `json:"max-concurrent-downloads"`
		LogLevel  string   `json:"log-level"`
		DataRoot  string   `json:"data-root"`
	}
	if err := json.Unmarshal(daemon, &merged); err != nil {
		t.Fatalf("merged daemon.json: %v\n%s", err, daemon)
	}
	if !slices.Equal(merged.Mirrors, []string{"http://" + stack.NSMirrorAddr}) || merged.Downloads != 2 || merged.LogLevel != "warn" || merged.DataRoot == "" {
		t.Errorf("daemon.json not merged over the AMI's: %s", daemon)
	}
	if !strings.Contains(mirrorLog, "/v2/library/ci-mirror-job/manifests/1") {
		t.Errorf("the mirror never served the image:\n%s", mirrorLog)
	}
}

// bootedFor returns the job's one instance as moto described it while it ran.
func bootedFor(t *testing.T, res runnersim.Result) types.Instance {
	t.Helper()
	insts, err := st.InstancesByTag(t.Context(), "ec2-executor:job-key", res.JobKeys[len(res.JobKeys)-1])
	if err != nil || len(insts) != 1 {
		t.Fatalf("want exactly one instance for the job, got %d (%v)", len(insts), err)
	}
	in, ok := st.Boot.Booted(aws.ToString(insts[0].InstanceId))
	if !ok {
		t.Fatal("the instance never booted")
	}
	return in
}

func TestRenderCloudInitShowsWhatAWorkerGetsAndValidateCatchesConflicts(t *testing.T) {
	cfg := settingsFile(t, "render.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Worker.ECRCredentialHelper = true
		s.Worker.ECRRegistries = []string{"123456789012.dkr.ecr.us-east-1.amazonaws.com"}
		s.Worker.RegistryMirrors = []string{"http://" + stack.NSMirrorAddr}
		s.Worker.Packages = []string{"jq"}
		s.Worker.ExtraCloudConfig = "#cloud-config\ntimezone: UTC\nruncmd:\n  - echo extra\n"
	})
	out, err := exec.Command(binary, "--config", cfg, "render-cloud-init").Output()
	if err != nil {
		t.Fatalf("render-cloud-init: %v", err)
	}
	if err := stack.SchemaCheck(t.TempDir(), out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config\n", "PER-INSTANCE-HOST-KEY", "ecr-login", "registry-mirrors", "timezone: UTC", "echo extra"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered cloud-config lacks %q", want)
		}
	}
	bad := settingsFile(t, "render-bad.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Worker.ExtraCloudConfig = "users:\n  - name: intruder\n"
	})
	msg, err := exec.Command(binary, "--config", bad, "validate").CombinedOutput()
	if err == nil || !strings.Contains(string(msg), `worker.extra_cloud_config: sets "users", which ec2-executor manages`) {
		t.Errorf("validate accepted a conflicting extra part: %v\n%s", err, msg)
	}
}

func TestLaunchTemplateSuppliesWhatTheSettingsLeaveOut(t *testing.T) {
	if err := st.CreateLaunchTemplate(t.Context(), "ci-workers", "t3.nano", "from-template", "yes"); err != nil {
		t.Fatal(err)
	}
	cfg := settingsFile(t, "template.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Instance.AMI, s.Instance.Types = "", nil
		s.Instance.LaunchTemplate = settings.LaunchTemplate{Name: "ci-workers", Version: "$Latest"}
		s.Instance.MetadataHopLimit = 3
	})
	job := baseJob(3007)
	job.Script = []string{"echo from a template"}
	res := runJob(t, job, cfg)
	if res.Status != "success" {
		t.Fatalf("status %s (%s)", res.Status, res.FailureReason)
	}
	contains(t, res.Log, "Launching the template's instance type in "+st.Seed.Subnet+" (on-demand)")
	d := stack.Describe(bootedFor(t, res))
	for _, want := range []string{"type=t3.nano", "from-template=yes", "subnet=" + st.Seed.Subnet, "hop_limit=3", "ec2-executor:job-id=3007"} {
		if !strings.Contains(d, want) {
			t.Errorf("moto's view lacks %q:\n%s", want, d)
		}
	}
}
