package pool

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/time/rate"

	"github.com/ec2-executor/ec2-executor/provision"
)

// paced is the pool's EC2 client: every action waits on its own token bucket, set
// below EC2's (RunInstances: 5 requests refilled at 2 per second; filtered
// DescribeInstances: 100 at 20; TerminateInstances and CreateTags: the mutating
// actions' 50 at 5), and is counted in the metrics. The SDK's adaptive retry still
// handles whatever throttling other clients of the account cause.
type paced struct {
	api    provision.EC2API
	m      *metrics
	run    *rate.Limiter
	read   *rate.Limiter
	mutate *rate.Limiter
	images *rate.Limiter
}

var _ provision.EC2API = (*paced)(nil)

func newPaced(api provision.EC2API, m *metrics, launchesPerSecond float64) *paced {
	return &paced{api: api, m: m,
		run:    rate.NewLimiter(rate.Limit(launchesPerSecond), 2),
		read:   rate.NewLimiter(10, 20),
		mutate: rate.NewLimiter(2, 10),
		images: rate.NewLimiter(2, 5)}
}

func (p *paced) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	if err := p.run.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.RunInstances(ctx, in, o...)
	p.m.call("RunInstances", err)
	return out, err
}

func (p *paced) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := p.read.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.DescribeInstances(ctx, in, o...)
	p.m.call("DescribeInstances", err)
	return out, err
}

func (p *paced) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, o ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if err := p.images.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.DescribeImages(ctx, in, o...)
	p.m.call("DescribeImages", err)
	return out, err
}

func (p *paced) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	if err := p.mutate.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.TerminateInstances(ctx, in, o...)
	p.m.call("TerminateInstances", err)
	return out, err
}

func (p *paced) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if err := p.mutate.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.CreateTags(ctx, in, o...)
	p.m.call("CreateTags", err)
	return out, err
}

func (p *paced) StopInstances(ctx context.Context, in *ec2.StopInstancesInput, o ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	if err := p.mutate.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.StopInstances(ctx, in, o...)
	p.m.call("StopInstances", err)
	return out, err
}

func (p *paced) StartInstances(ctx context.Context, in *ec2.StartInstancesInput, o ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	if err := p.mutate.Wait(ctx); err != nil {
		return nil, err
	}
	out, err := p.api.StartInstances(ctx, in, o...)
	p.m.call("StartInstances", err)
	return out, err
}
