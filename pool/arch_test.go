package pool

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// [pool.arm64] keeps arm64 workers beside instance.types' x86_64 ones: each
// architecture is filled from its own image and types, counted and trimmed apart.
func TestThePoolKeepsIdleWorkersPerArchitecture(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	p.s.Pool.IdleCount = 1
	p.s.Instance.ARM64 = settings.ArchImage{AMI: "ami-0a64a64a64a64a64a", Types: []string{"t4g.micro"}}
	p.s.Pool.ARM64.IdleCount = 2
	p.fill(t.Context())
	if len(f.Inputs) != 2 {
		t.Fatalf("%d RunInstances calls, want one per architecture", len(f.Inputs))
	}
	x86, arm := f.Inputs[0], f.Inputs[1]
	if x86.InstanceType != "t3.micro" || aws.ToInt32(x86.MaxCount) != 1 || arm.InstanceType != "t4g.micro" ||
		aws.ToString(arm.ImageId) != "ami-0a64a64a64a64a64a" || aws.ToInt32(arm.MaxCount) != 2 {
		t.Fatalf("launched %s ×%d and %s ×%d with %s", x86.InstanceType, aws.ToInt32(x86.MaxCount), arm.InstanceType, aws.ToInt32(arm.MaxCount), aws.ToString(arm.ImageId))
	}
	p.fill(t.Context()) // booting workers count: nothing more
	if len(f.Inputs) != 2 {
		t.Fatalf("a second fill launched again: %d calls", len(f.Inputs))
	}
	for _, w := range p.book.Workers {
		w.State, w.Since = workers.PoolIdle, now.Add(-time.Hour)
	}
	p.s.Pool.ARM64.IdleCount = 1
	p.resize(t.Context())
	x, a := p.idleOf(settings.ArchX86), p.idleOf(settings.ArchARM)
	if x != 1 || a != 1 {
		t.Fatalf("after resize: %d x86_64 and %d arm64 idle, want 1 and 1", x, a)
	}
}

func (p *Pool) idleOf(arch string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, _ := p.countArch(arch)
	return n[workers.PoolIdle]
}
