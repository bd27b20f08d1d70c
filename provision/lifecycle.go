package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// WaitRunning waits with the SDK's running waiter, then returns the instance as EC2
// describes it. An instance that terminates instead fails with its state reason.
func (p *Provisioner) WaitRunning(ctx context.Context, id string) (Instance, error) {
	w := ec2.NewInstanceRunningWaiter(p.api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = p.PollMin, p.PollMax
		o.ClientOptions = append(o.ClientOptions, patientRetries) // a throttled poll would end the wait
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, p.WaitTimeout)
	if err != nil {
		if inst, derr := p.Describe(context.WithoutCancel(ctx), id); derr == nil && inst.Gone() {
			return Instance{}, fmt.Errorf("waiting for %s to run: it is %s (%s)", id, inst.State, inst.StateReason)
		}
		return Instance{}, fmt.Errorf("waiting for %s to run: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			return fromSDK(in), nil
		}
	}
	return Instance{}, fmt.Errorf("waiting for %s to run: not found", id)
}

// Describe returns one instance.
func (p *Provisioner) Describe(ctx context.Context, id string) (Instance, error) {
	out, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, patientRetries)
	if err != nil {
		return Instance{}, fmt.Errorf("describing %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			return fromSDK(in), nil
		}
	}
	return Instance{}, fmt.Errorf("describing %s: not found", id)
}

// Find returns the instances carrying every tag in tags that are not yet terminated,
// with one filtered DescribeInstances call per page.
func (p *Provisioner) Find(ctx context.Context, tags map[string]string) ([]Instance, error) {
	filters := []types.Filter{{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "stopping", "stopped"}}}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	var found []Instance
	pages := ec2.NewDescribeInstancesPaginator(p.api, &ec2.DescribeInstancesInput{Filters: filters})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx, patientRetries)
		if err != nil {
			return nil, fmt.Errorf("finding instances by tags: %w", err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				found = append(found, fromSDK(in))
			}
		}
	}
	return found, nil
}

// Terminate terminates id and confirms EC2 reports it shutting-down or terminated.
// An instance EC2 no longer knows counts as terminated, so cleanup can run twice.
func (p *Provisioner) Terminate(ctx context.Context, id string) error {
	return p.TerminateAll(ctx, []string{id})[id]
}

// TerminateAll terminates ids with one TerminateInstances call and returns, by id,
// what kept each from being confirmed shutting-down or terminated (nil when it was).
// A call that names an id EC2 does not know fails whole: then each is tried alone,
// so one gone instance does not keep the others running.
func (p *Provisioner) TerminateAll(ctx context.Context, ids []string) map[string]error {
	res := make(map[string]error, len(ids))
	out, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}, patientRetries)
	var apiErr smithy.APIError
	notFound := errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidInstanceID.NotFound"
	switch {
	case notFound && len(ids) == 1:
		res[ids[0]] = nil
		return res
	case notFound:
		for _, id := range ids {
			res[id] = p.Terminate(ctx, id)
		}
		return res
	case err != nil:
		for _, id := range ids {
			res[id] = fmt.Errorf("terminating %s: %w", id, err)
		}
		return res
	}
	for _, id := range ids {
		res[id] = fmt.Errorf("terminating %s: EC2 did not confirm the termination", id)
	}
	for _, c := range out.TerminatingInstances {
		id := aws.ToString(c.InstanceId)
		if _, asked := res[id]; !asked || c.CurrentState == nil {
			continue
		}
		switch c.CurrentState.Name {
		case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
			res[id] = nil
		default:
			res[id] = fmt.Errorf("terminating %s: EC2 reports it %s", id, c.CurrentState.Name)
		}
	}
	return res
}

// Tag sets tags on the instances with one CreateTags call (EC2 takes up to 1000
// resources per call).
func (p *Provisioner) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := p.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: sdkTags(tags)}); err != nil {
		return fmt.Errorf("tagging %s: %w", strings.Join(ids, ","), err)
	}
	return nil
}

// Stop stops instances with one StopInstances call: they keep their disks (and cost
// only those) and can be started again.
func (p *Provisioner) Stop(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := p.api.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids}); err != nil {
		return fmt.Errorf("stopping %s: %w", strings.Join(ids, ","), err)
	}
	return nil
}

// StartStopped starts stopped instances with one StartInstances call.
func (p *Provisioner) StartStopped(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := p.api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ids}); err != nil {
		return fmt.Errorf("starting %s: %w", strings.Join(ids, ","), err)
	}
	return nil
}

// SubnetZones maps each subnet to its availability zone, with one DescribeSubnets.
func (p *Provisioner) SubnetZones(ctx context.Context, ids []string) (map[string]string, error) {
	out, err := p.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids}, patientRetries)
	if err != nil {
		return nil, fmt.Errorf("describing subnets %s: %w", strings.Join(ids, ", "), err)
	}
	zones := map[string]string{}
	for _, sn := range out.Subnets {
		zones[aws.ToString(sn.SubnetId)] = aws.ToString(sn.AvailabilityZone)
	}
	return zones, nil
}
