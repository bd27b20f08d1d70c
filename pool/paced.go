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

// do waits on limiter, makes the call and counts it under action.
func do[Out any](ctx context.Context, p *paced, limiter *rate.Limiter, action string, call func() (Out, error)) (Out, error) {
	if err := limiter.Wait(ctx); err != nil {
		var zero Out
		return zero, err
	}
	out, err := call()
	p.m.call(action, err)
	return out, err
}

func (p *paced) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return do(ctx, p, p.run, "RunInstances", func() (*ec2.RunInstancesOutput, error) { return p.api.RunInstances(ctx, in, o...) })
}

func (p *paced) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return do(ctx, p, p.read, "DescribeInstances", func() (*ec2.DescribeInstancesOutput, error) { return p.api.DescribeInstances(ctx, in, o...) })
}

func (p *paced) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, o ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return do(ctx, p, p.images, "DescribeImages", func() (*ec2.DescribeImagesOutput, error) { return p.api.DescribeImages(ctx, in, o...) })
}

func (p *paced) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, o ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return do(ctx, p, p.images, "DescribeSubnets", func() (*ec2.DescribeSubnetsOutput, error) { return p.api.DescribeSubnets(ctx, in, o...) })
}

func (p *paced) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return do(ctx, p, p.images, "DescribeInstanceTypes", func() (*ec2.DescribeInstanceTypesOutput, error) { return p.api.DescribeInstanceTypes(ctx, in, o...) })
}

func (p *paced) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return do(ctx, p, p.mutate, "TerminateInstances", func() (*ec2.TerminateInstancesOutput, error) { return p.api.TerminateInstances(ctx, in, o...) })
}

func (p *paced) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return do(ctx, p, p.mutate, "CreateTags", func() (*ec2.CreateTagsOutput, error) { return p.api.CreateTags(ctx, in, o...) })
}

func (p *paced) StopInstances(ctx context.Context, in *ec2.StopInstancesInput, o ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	return do(ctx, p, p.mutate, "StopInstances", func() (*ec2.StopInstancesOutput, error) { return p.api.StopInstances(ctx, in, o...) })
}

func (p *paced) StartInstances(ctx context.Context, in *ec2.StartInstancesInput, o ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	return do(ctx, p, p.mutate, "StartInstances", func() (*ec2.StartInstancesOutput, error) { return p.api.StartInstances(ctx, in, o...) })
}
