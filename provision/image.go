package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SSMAPI is the SSM calls the driver makes: reading the AMI id from a parameter such
// as /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64, and the
// managers' heartbeats under HeartbeatPath.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
}

var _ SSMAPI = (*ssm.Client)(nil)

// ResolveAMI reads an AMI id from an SSM parameter, once per prepare, so every
// attempt of a launch uses the same image and the job log names it.
func ResolveAMI(ctx context.Context, api SSMAPI, parameter string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
	if err != nil {
		return "", fmt.Errorf("reading the AMI id from SSM parameter %s: %w", parameter, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("reading the AMI id from SSM parameter %s: it has no value", parameter)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// resolveRootDevice fills in the root device name a volume override needs, from the
// AMI (one DescribeImages call, only when a volume override has no device name).
func (p *Provisioner) resolveRootDevice(ctx context.Context, spec *LaunchSpec) error {
	if spec.RootVolume == (Volume{}) || spec.RootVolume.DeviceName != "" {
		return nil
	}
	if spec.AMI == "" {
		return errors.New("launching: the root volume override needs a device name when the launch template supplies the image")
	}
	out, err := p.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{spec.AMI}})
	if err != nil {
		return fmt.Errorf("describing image %s: %w", spec.AMI, err)
	}
	if len(out.Images) != 1 || aws.ToString(out.Images[0].RootDeviceName) == "" {
		return fmt.Errorf("describing image %s: EC2 returned no root device name", spec.AMI)
	}
	spec.RootVolume.DeviceName = aws.ToString(out.Images[0].RootDeviceName)
	return nil
}

// TypeArchitectures asks EC2 which architecture each instance type runs (one
// DescribeInstanceTypes). A type EC2 does not know is left out.
func (p *Provisioner) TypeArchitectures(ctx context.Context, names []string) (map[string]string, error) {
	in := &ec2.DescribeInstanceTypesInput{}
	for _, n := range names {
		in.InstanceTypes = append(in.InstanceTypes, types.InstanceType(n))
	}
	out, err := p.api.DescribeInstanceTypes(ctx, in, patientRetries)
	if err != nil {
		return nil, fmt.Errorf("describing instance types %s: %w", strings.Join(names, ", "), err)
	}
	archs := map[string]string{}
	for _, t := range out.InstanceTypes {
		if t.ProcessorInfo != nil && len(t.ProcessorInfo.SupportedArchitectures) > 0 {
			archs[string(t.InstanceType)] = string(t.ProcessorInfo.SupportedArchitectures[0])
		}
	}
	return archs, nil
}

// ImageArchitecture asks EC2 which architecture an AMI boots (one DescribeImages),
// or "" when EC2 does not show the image.
func (p *Provisioner) ImageArchitecture(ctx context.Context, ami string) (string, error) {
	out, err := p.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}, patientRetries)
	if err != nil {
		return "", fmt.Errorf("describing image %s: %w", ami, err)
	}
	if len(out.Images) != 1 {
		return "", nil
	}
	return string(out.Images[0].Architecture), nil
}
