package provision

import (
	"encoding/base64"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// runInput is the single RunInstances call for one choice: tags, IMDSv2 and user data
// go in with it, so no instance ever exists untagged or with IMDSv1.
func runInput(spec LaunchSpec, c Choice, token string) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(int32(max(spec.count, 1))),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString(spec.UserData)),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:              types.HttpTokensStateRequired,
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(int32(spec.MetadataHopLimit)),
		},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: sdkTags(spec.Tags)},
			{ResourceType: types.ResourceTypeVolume, Tags: sdkTags(spec.Tags)},
		},
		ClientToken:           optional(token),
		ImageId:               optional(spec.AMI),
		InstanceType:          types.InstanceType(c.InstanceType),
		IamInstanceProfile:    profile(spec.InstanceProfile),
		InstanceMarketOptions: market(c.Spot, spec.SpotMaxPrice),
		BlockDeviceMappings:   rootVolume(spec.RootVolume),
		LaunchTemplate:        template(spec.LaunchTemplate),
	}
	if spec.EBSOptimized {
		in.EbsOptimized = aws.Bool(true)
	}
	if spec.Monitoring {
		in.Monitoring = &types.RunInstancesMonitoringEnabled{Enabled: aws.Bool(true)}
	}
	network(in, spec, c.SubnetID)
	return in
}

// network places the instance: a plain subnet, or an interface that asks for a
// public address (which RunInstances only takes on a network interface).
func network(in *ec2.RunInstancesInput, spec LaunchSpec, subnet string) {
	if !spec.PublicIP {
		in.SubnetId = optional(subnet)
		in.SecurityGroupIds = spec.SecurityGroupIDs
		return
	}
	in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
		DeviceIndex:              aws.Int32(0),
		SubnetId:                 optional(subnet),
		Groups:                   spec.SecurityGroupIDs,
		AssociatePublicIpAddress: aws.Bool(true),
		DeleteOnTermination:      aws.Bool(true),
	}}
}

func market(spot bool, maxPrice string) *types.InstanceMarketOptionsRequest {
	if !spot {
		return nil
	}
	return &types.InstanceMarketOptionsRequest{
		MarketType: types.MarketTypeSpot,
		SpotOptions: &types.SpotMarketOptions{
			SpotInstanceType:             types.SpotInstanceTypeOneTime,
			InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
			MaxPrice:                     optional(maxPrice),
		},
	}
}

func rootVolume(v Volume) []types.BlockDeviceMapping {
	if v == (Volume{}) {
		return nil
	}
	ebs := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(true), KmsKeyId: optional(v.KMSKeyID)}
	if v.SizeGiB > 0 {
		ebs.VolumeSize = aws.Int32(v.SizeGiB)
	}
	if v.Type != "" {
		ebs.VolumeType = types.VolumeType(v.Type)
	}
	if v.IOPS > 0 {
		ebs.Iops = aws.Int32(v.IOPS)
	}
	if v.Throughput > 0 {
		ebs.Throughput = aws.Int32(v.Throughput)
	}
	if v.Encrypted {
		ebs.Encrypted = aws.Bool(true)
	}
	return []types.BlockDeviceMapping{{DeviceName: aws.String(v.DeviceName), Ebs: ebs}}
}

func template(t Template) *types.LaunchTemplateSpecification {
	if t.ID == "" && t.Name == "" {
		return nil
	}
	return &types.LaunchTemplateSpecification{LaunchTemplateId: optional(t.ID),
		LaunchTemplateName: optional(t.Name), Version: optional(t.Version)}
}

func profile(p string) *types.IamInstanceProfileSpecification {
	switch {
	case strings.HasPrefix(p, "arn:"):
		return &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
	case p != "":
		return &types.IamInstanceProfileSpecification{Name: aws.String(p)}
	}
	return nil
}

// optional leaves a field unset (so EC2 or the template decides) when s is empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func sdkTags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}
