package stages

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testDriver(t *testing.T, f *provisiontest.FakeEC2, vars ...string) *Driver {
	s := settings.Default()
	s.ManagerID = "m1"
	s.StateDir = t.TempDir()
	s.Instance.AMI = "ami-0123456789abcdef0"
	s.Instance.Types = []string{"c6i.large", "c5.large"}
	s.Instance.SubnetIDs = []string{"subnet-0123456789abcdef0"}
	env := ParseEnv(append([]string{"CUSTOM_ENV_CI_JOB_ID=42"}, vars...))
	return &Driver{Settings: s, Env: env, Log: hclog.NewNullLogger(), Now: func() time.Time { return now },
		NewAWS: func(context.Context) (Clients, error) { return Clients{EC2: f}, nil }}
}

func TestOverridesOnlyFromTheAllowList(t *testing.T) {
	f := provisiontest.New()
	d := testDriver(t, f, "CUSTOM_ENV_"+VarInstanceType+"=c6i.4xlarge", "CUSTOM_ENV_"+VarMarket+"=spot")
	d.Settings.Overrides = settings.Overrides{InstanceTypes: []string{"c6i.2xlarge", "c6i.4xlarge"}, Markets: []string{"spot"}}
	in, err := d.jobInstance()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(in.Types, ",") != "c6i.4xlarge" || in.Market != "spot" || d.Settings.Instance.Types[0] != "c6i.large" {
		t.Fatalf("overrides not applied to a copy: %+v", in)
	}
	cases := map[string]string{
		VarInstanceType + "=p5.48xlarge": "must be one of c6i.2xlarge, c6i.4xlarge",
		VarMarket + "=on-demand":         "must be one of spot",
		VarRootVolumeGiB + "=500":        "permit no root volume override",
		"EC2_EXECUTOR_INSTANCE_TYP=x":    "is not a variable ec2-executor knows",
	}
	for v, want := range cases {
		d := testDriver(t, f, "CUSTOM_ENV_"+v)
		d.Settings.Overrides = settings.Overrides{InstanceTypes: []string{"c6i.2xlarge", "c6i.4xlarge"}, Markets: []string{"spot"}}
		_, err := d.jobInstance()
		var be *BuildError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), strings.Split(v, "=")[0]) {
			t.Errorf("%s: want a build error naming the variable and %q, got %v", v, want, err)
		}
	}
	if f.Calls["RunInstances"]+f.Calls["DescribeInstances"] != 0 {
		t.Fatalf("EC2 called while checking overrides: %v", f.Calls)
	}
}

func TestRootVolumeOverrideIsBounded(t *testing.T) {
	d := testDriver(t, provisiontest.New(), "CUSTOM_ENV_"+VarRootVolumeGiB+"=200")
	d.Settings.Overrides.MaxRootVolumeGiB = 100
	if _, err := d.jobInstance(); err == nil || !strings.Contains(err.Error(), "from 1 to 100") {
		t.Fatalf("got %v", err)
	}
	d.Env.Vars[VarRootVolumeGiB] = "80"
	if in, err := d.jobInstance(); err != nil || in.RootVolume.SizeGiB != 80 {
		t.Fatalf("got %+v %v", in.RootVolume, err)
	}
}

func TestJobLongerThanMaxLifetimeIsRefused(t *testing.T) {
	d := testDriver(t, provisiontest.New())
	if err := d.checkLifetime(Job{Timeout: 7 * 3600}); err == nil || !strings.Contains(err.Error(), "instance.max_lifetime") {
		t.Fatalf("got %v", err)
	}
	if err := d.checkLifetime(Job{Timeout: 3600}); err != nil {
		t.Fatal(err)
	}
}

// launch puts one worker into the fake, tagged for key by manager at at.
func launch(t *testing.T, f *provisiontest.FakeEC2, key, manager string, at time.Time) string {
	return f.Launched(t, map[string]string{workers.TagManagedBy: workers.ManagedByThis, workers.TagManager: manager,
		workers.TagJobKey: key, workers.TagCreatedAt: at.UTC().Format(time.RFC3339)})
}

func TestCleanupWithoutStateAsksEC2OnlyWhenConfigHandedAKey(t *testing.T) {
	f := provisiontest.New()
	d := testDriver(t, f) // config failed: no job key in the environment
	d.Settings.Reap.FromCleanup = false
	if err := d.Cleanup(t.Context()); err != nil || len(f.Calls) != 0 {
		t.Fatalf("cleanup after a failed config: %v, calls %v", err, f.Calls)
	}
	d = testDriver(t, f, JobKeyVar+"=42-0000abcd")
	d.Settings.Reap.FromCleanup = false
	orphan := launch(t, f, "42-0000abcd", "m1", now)
	if err := d.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.AssertRunning(t)
	if f.Calls["TerminateInstances"] != 1 {
		t.Fatalf("orphan %s not terminated by tags: %v", orphan, f.Calls)
	}
}

// TestCleanupTerminatesEveryInstanceOfTheJob covers a duplicate launch: the state
// names one instance, EC2 holds two with the job's key. Both go, another job's and
// another manager's stay.
func TestCleanupTerminatesEveryInstanceOfTheJob(t *testing.T) {
	f := provisiontest.New()
	d := testDriver(t, f, JobKeyVar+"=42-0000abcd")
	d.Settings.Reap.FromCleanup = false
	launch(t, f, "42-0000abcd", "m1", now) // the duplicate the state does not name
	second := launch(t, f, "42-0000abcd", "m1", now)
	otherJob := launch(t, f, "43-0000abcd", "m1", now)
	otherManager := launch(t, f, "42-0000abcd", "m2", now)
	if err := d.store().Save(State{JobKey: "42-0000abcd", Lease: workers.Lease{InstanceID: second}}); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls["DescribeInstances"]
	if err := d.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.AssertRunning(t, otherJob, otherManager)
	if n := f.Calls["DescribeInstances"] - calls; n != 1 {
		t.Errorf("cleanup made %d DescribeInstances calls, want one filtered call", n)
	}
}

func TestLosingTheWorkerShortensLaterStagesUnlessCancelled(t *testing.T) {
	f := provisiontest.New()
	d := testDriver(t, f, JobKeyVar+"=42-abcd")
	d.Settings.SSH.ConnectTimeout = settings.Duration{Duration: 200 * time.Millisecond}
	keys, err := engine.NewKeys("t")
	if err != nil {
		t.Fatal(err)
	}
	st := State{JobKey: "42-abcd", BuildContainer: "c", Lease: workers.Lease{InstanceID: "i-0", Address: "127.0.0.1:1", SSHUser: "u",
		ClientKey: keys.Client.Private, HostKey: keys.Host.Public}}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cancelled := range []bool{true, false} {
		if err := d.store().Save(st); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		if cancelled {
			cancel()
		}
		if err := d.Run(ctx, script, "build_script"); err == nil {
			t.Fatal("reached a worker that does not exist")
		}
		cancel()
		got, err := d.store().Load("42-abcd")
		if err != nil || got.Unreachable == cancelled {
			t.Errorf("cancelled %v: state unreachable %v (%v)", cancelled, got.Unreachable, err)
		}
	}
}

// A job asks for Graviton by EC2_EXECUTOR_ARCH (the [instance.arm64] image and
// types) or by an arm64 instance type (the arm64 image, its own type); an
// architecture without an image is the job's configuration error.
func TestArchitectureOverridesPickTheImage(t *testing.T) {
	f := provisiontest.New()
	allow := settings.Overrides{InstanceTypes: []string{"c6i.2xlarge", "c7g.2xlarge"}, Architectures: []string{"x86_64", "arm64"}}
	arm := settings.ArchImage{AMI: "ami-0aaaaaaaaaaaaaaaa", Types: []string{"c7g.large", "m7g.large"}}
	cases := []struct {
		vars        []string
		ami, types  string
		errContains string
	}{
		{[]string{VarArch + "=arm64"}, "ami-0aaaaaaaaaaaaaaaa", "c7g.large,m7g.large", ""},
		{[]string{VarInstanceType + "=c7g.2xlarge"}, "ami-0aaaaaaaaaaaaaaaa", "c7g.2xlarge", ""},
		{[]string{VarArch + "=x86_64"}, "ami-0123456789abcdef0", "c6i.large,c5.large", ""},
		{[]string{VarArch + "=x86_64", VarInstanceType + "=c7g.2xlarge"}, "", "", "instance type c7g.2xlarge is arm64, not x86_64"},
	}
	for _, c := range cases {
		var vars []string
		for _, v := range c.vars {
			vars = append(vars, "CUSTOM_ENV_"+v)
		}
		d := testDriver(t, f, vars...)
		d.Settings.Overrides, d.Settings.Instance.ARM64 = allow, arm
		in, err := d.jobInstance()
		switch {
		case c.errContains != "":
			var be *BuildError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), c.errContains) {
				t.Errorf("%v: want a build error with %q, got %v", c.vars, c.errContains, err)
			}
		case err != nil || in.AMI != c.ami || strings.Join(in.Types, ",") != c.types:
			t.Errorf("%v: AMI %s, types %v, %v; want %s and %s", c.vars, in.AMI, in.Types, err, c.ami, c.types)
		}
	}
	d := testDriver(t, f, "CUSTOM_ENV_"+VarArch+"=arm64")
	d.Settings.Overrides = allow
	if _, err := d.jobInstance(); err == nil || !strings.Contains(err.Error(), "no arm64 image: set instance.arm64.ami") {
		t.Fatalf("arm64 without an image: %v", err)
	}
}
