package stack

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// InstancesByTag returns every instance (any state) carrying tag key=value, as moto
// sees it.
func (s *Stack) InstancesByTag(ctx context.Context, key, value string) ([]types.Instance, error) {
	pages := ec2.NewDescribeInstancesPaginator(s.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + key), Values: []string{value}}}})
	var all []types.Instance
	for pages.HasMorePages() { // moto answers 100 reservations a page
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			all = append(all, r.Instances...)
		}
	}
	return all, nil
}

// RunningOurs lists the driver's instances (managed-by=ec2-executor) that are not
// terminated: after every job this must be empty.
func (s *Stack) RunningOurs(ctx context.Context) ([]string, error) {
	all, err := s.InstancesByTag(ctx, "managed-by", "ec2-executor")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, in := range all {
		if n := in.State.Name; n != types.InstanceStateNameTerminated && n != types.InstanceStateNameShuttingDown {
			ids = append(ids, aws.ToString(in.InstanceId)+" ("+string(n)+")")
		}
	}
	return ids, nil
}

// Describe summarizes an instance as moto holds it, for the demo and test failures.
func Describe(in types.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s  state=%s  type=%s  subnet=%s  private_ip=%s  public_ip=%q\n",
		aws.ToString(in.InstanceId), in.State.Name, in.InstanceType, aws.ToString(in.SubnetId),
		aws.ToString(in.PrivateIpAddress), aws.ToString(in.PublicIpAddress))
	var sgs []string
	for _, g := range in.SecurityGroups {
		sgs = append(sgs, aws.ToString(g.GroupId))
	}
	profile := ""
	if in.IamInstanceProfile != nil {
		profile = aws.ToString(in.IamInstanceProfile.Arn)
	}
	fmt.Fprintf(&b, "  security_groups=%v  instance_profile=%s\n", sgs, profile)
	if m := in.MetadataOptions; m != nil {
		fmt.Fprintf(&b, "  metadata: http_tokens=%s hop_limit=%d\n", m.HttpTokens, aws.ToInt32(m.HttpPutResponseHopLimit))
	}
	tags := make([]string, 0, len(in.Tags))
	for _, t := range in.Tags {
		tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	sort.Strings(tags)
	fmt.Fprintf(&b, "  tags: %s\n", strings.Join(tags, "  "))
	return b.String()
}

// CreateLaunchTemplate creates a launch template in moto with an instance type, the
// stack's AMI and one instance tag, for tests of settings that override a template.
func (s *Stack) CreateLaunchTemplate(ctx context.Context, name, instanceType, tagKey, tagValue string) error {
	_, err := s.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId:      aws.String(AMI),
			InstanceType: types.InstanceType(instanceType),
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String(tagKey), Value: aws.String(tagValue)}}}},
		},
	})
	return err
}

// TerminateInstance terminates an instance behind the driver's back, as an operator,
// a spot interruption or an account clean-up would.
func (s *Stack) TerminateInstance(ctx context.Context, id string) error {
	_, err := s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	return err
}
