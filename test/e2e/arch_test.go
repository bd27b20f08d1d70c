//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// armAMI stands for an arm64 image: moto does not check that images exist, and the
// stack plays every worker on this (amd64) machine, so the test checks what was
// launched and runs the job on the played worker.
const armAMI = "ami-0a64a64a64a64a64"

// A job that asks for arm64 by EC2_EXECUTOR_ARCH launches the [instance.arm64]
// image and types; one that asks for a Graviton type gets that type with the
// arm64 image; the others launch the x86_64 default.
func TestAJobChoosesItsArchitecture(t *testing.T) {
	cfg := settingsFile(t, "arch.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Instance.ARM64 = settings.ArchImage{AMI: armAMI, Types: []string{"t4g.micro"}}
		s.Overrides.Architectures = []string{settings.ArchARM, settings.ArchX86}
		s.Overrides.InstanceTypes = []string{"t4g.small"}
	})
	for i, c := range []struct {
		variable, value, typ, ami string
	}{
		{"EC2_EXECUTOR_ARCH", "arm64", "t4g.micro", armAMI},
		{"EC2_EXECUTOR_INSTANCE_TYPE", "t4g.small", "t4g.small", armAMI},
		{"EC2_EXECUTOR_ARCH", "x86_64", "t3.micro", stack.AMI},
	} {
		job := baseJob(3101 + i)
		job.Variables = []runnersim.Variable{{Key: c.variable, Value: c.value, Public: true}}
		job.Script = []string{"echo on $(uname -m)"}
		res := runJob(t, job, cfg)
		if res.Status != "success" {
			t.Fatalf("%s=%s: %s (%s)", c.variable, c.value, res.Status, res.FailureReason)
		}
		contains(t, res.Log, "Launching "+c.typ+" in ")
		in := bootedFor(t, res)
		if got := aws.ToString(in.ImageId); got != c.ami || string(in.InstanceType) != c.typ {
			t.Errorf("%s=%s launched %s with %s, want %s with %s", c.variable, c.value, in.InstanceType, got, c.typ, c.ami)
		}
	}
	// An x86_64 image given for arm64 workers: EC2's DescribeImages tells, and the
	// job fails before RunInstances, naming the setting.
	wrong := settingsFile(t, "arch-wrong.toml", st.Endpoint(), func(s *settings.Settings) {
		s.Instance.ARM64 = settings.ArchImage{AMI: stack.AMI, Types: []string{"t4g.micro"}}
		s.Overrides.Architectures = []string{settings.ArchARM}
	})
	job := baseJob(3111)
	job.Variables = []runnersim.Variable{{Key: "EC2_EXECUTOR_ARCH", Value: "arm64", Public: true}}
	res := runJob(t, job, wrong)
	msg := "AMI " + stack.AMI + " boots x86_64 (EC2's DescribeImages), but its instance types (t4g.micro) are arm64"
	if res.FailureReason != "runner_system_failure" || !strings.Contains(res.Log, msg) || strings.Contains(res.Log, "Launching t4g") {
		t.Errorf("an x86_64 image for arm64 workers: %s (%s), want %q before any launch\n%s", res.Status, res.FailureReason, msg, res.Log)
	}
	job = baseJob(3110)
	job.Variables = []runnersim.Variable{{Key: "EC2_EXECUTOR_ARCH", Value: "riscv64", Public: true}}
	res = runJob(t, job, cfg)
	if res.FailureReason != "script_failure" || !strings.Contains(res.Log, `CI variable EC2_EXECUTOR_ARCH="riscv64" is not allowed: the architecture must be one of arm64, x86_64`) {
		t.Errorf("an unknown architecture: %s (%s)\n%s", res.Status, res.FailureReason, res.Log)
	}
}
