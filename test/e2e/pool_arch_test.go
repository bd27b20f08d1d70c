//go:build e2e

package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
)

// TestPoolKeepsIdleWorkersOfEachArchitecture runs a pool of one x86_64 and one
// arm64 idle worker ([pool.arm64]): a job that asks for arm64 gets the arm64 one,
// launched from [instance.arm64]'s image and types, with no EC2 call of its own,
// and a plain job the x86_64 one.
func TestPoolKeepsIdleWorkersOfEachArchitecture(t *testing.T) {
	p := newPool(t, "pool-arch", 1, func(s *settings.Settings) {
		s.Instance.ARM64 = settings.ArchImage{AMI: armAMI, Types: []string{"t4g.micro"}}
		s.Pool.ARM64.IdleCount = 1
		s.Overrides.Architectures = []string{settings.ArchARM}
		s.Pool.PrepullImages = nil
	})
	p.start()
	p.waitIdle(2)
	waitMetrics(t, p.metrics, `ec2x_pool_idle_by_arch{arch="arm64",count="actual"} 1`, `ec2x_pool_idle_by_arch{arch="arm64",count="desired"} 1`,
		`ec2x_pool_idle_by_arch{arch="x86_64",count="actual"} 1`)
	for i, c := range []struct{ arch, typ, ami string }{{"arm64", "t4g.micro", armAMI}, {"", "t3.micro", ""}} {
		job := baseJob(8701 + i)
		if c.arch != "" {
			job.Variables = []runnersim.Variable{{Key: "EC2_EXECUTOR_ARCH", Value: c.arch, Public: true}}
		}
		job.Script = []string{"echo pooled"}
		res := p.job(job)
		contains(t, res.Log, "from the pool (ready for", "pooled", "Job succeeded")
		if calls := p.prepareCalls(res); len(calls) != 0 {
			t.Errorf("prepare of a %s job on a pool hit made EC2 calls: %v", c.typ, calls)
		}
		in, ok := st.Boot.Booted(pooledWorker(t, res))
		if !ok || string(in.InstanceType) != c.typ || (c.ami != "" && aws.ToString(in.ImageId) != c.ami) {
			t.Errorf("the job got a %s worker with %s, want %s", in.InstanceType, aws.ToString(in.ImageId), c.typ)
		}
	}
	p.waitIdle(2) // each architecture refilled
	p.note("fault", "an arm64 job and an x86_64 job on a pool of one idle worker of each", "success, each on its architecture's pooled worker, prepare made no EC2 call")
	p.finish()
}
