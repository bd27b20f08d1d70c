package stack

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ec2-executor/ec2-executor/examples"
)

// MotoURL is moto_server's endpoint.
const MotoURL = "http://" + MotoAddr

// Seed is what the stack creates in moto.
type Seed struct {
	VPC, Subnet, SecurityGroup, InstanceProfile, ECRRepository string
	// Subnet2 (127.0.2.0/24, another zone) is for capacity fallback tests.
	Subnet2 string
}

func (s *Stack) startMoto(ctx context.Context) error {
	if err := portFree(MotoAddr); err != nil {
		return err
	}
	p, err := s.start("moto", []string{"MOTO_RECORDER_FILEPATH=" + filepath.Join(s.Dir, "logs", "moto_recording.jsonl")},
		"moto_server", "-H", "127.0.0.1", "-p", "5005")
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 60*time.Second, "moto_server to answer", httpUp(MotoURL+"/moto-api/"))
}

// AWSConfig is an SDK configuration for moto: static credentials, no IMDS.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		awsconfig.WithSharedConfigFiles([]string{}), awsconfig.WithSharedCredentialsFiles([]string{}),
		awsconfig.WithBaseEndpoint(MotoURL))
}

// seed shapes moto so every instance gets a loopback address (127.0.16.0/20, 4,094 of
// them: moto keeps a terminated instance's) and no public IP.
func (s *Stack) seed(ctx context.Context) error {
	cfg, err := AWSConfig(ctx)
	if err != nil {
		return err
	}
	s.ec2 = ec2.NewFromConfig(cfg)
	if err := s.seedNetwork(ctx); err != nil {
		return err
	}
	if err := s.seedIAM(ctx, iam.NewFromConfig(cfg)); err != nil {
		return err
	}
	repo, err := ecr.NewFromConfig(cfg).CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(ECRRepository)})
	if err != nil {
		return fmt.Errorf("creating ECR repository: %w", err)
	}
	s.Seed.ECRRepository = aws.ToString(repo.Repository.RepositoryUri)
	return seedBucket(ctx)
}

func (s *Stack) seedNetwork(ctx context.Context) error {
	c := s.ec2
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		return fmt.Errorf("creating VPC: %w", err)
	}
	s.Seed.VPC = aws.ToString(vpc.Vpc.VpcId)
	if s.Seed.Subnet, err = s.loopbackSubnet(ctx, vpc.Vpc.VpcId, "127.0.16.0/20", Region+"a"); err != nil {
		return err
	}
	if s.Seed.Subnet2, err = s.loopbackSubnet(ctx, vpc.Vpc.VpcId, "127.0.2.0/24", Region+"b"); err != nil {
		return err
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("ci-runner"),
		Description: aws.String("ec2-executor workers"), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		return fmt.Errorf("creating security group: %w", err)
	}
	s.Seed.SecurityGroup = aws.ToString(sg.GroupId)
	return s.deleteDefaultVPC(ctx)
}

// loopbackSubnet creates a subnet whose instances get only a loopback private address.
func (s *Stack) loopbackSubnet(ctx context.Context, vpc *string, cidr, zone string) (string, error) {
	sub, err := s.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc, CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(zone)})
	if err != nil {
		return "", fmt.Errorf("creating subnet %s: %w", cidr, err)
	}
	// moto makes the first subnet of an AZ hand out invented public 54.x addresses.
	if _, err := s.ec2.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{SubnetId: sub.Subnet.SubnetId,
		MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		return "", fmt.Errorf("disabling public IPs in %s: %w", cidr, err)
	}
	return aws.ToString(sub.Subnet.SubnetId), nil
}

// deleteDefaultVPC makes a launch without a subnet fail (VPCIdNotSpecified) instead of
// getting a random 10.x address and a public IP.
func (s *Stack) deleteDefaultVPC(ctx context.Context) error {
	c := s.ec2
	subs, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return err
	}
	for _, sn := range subs.Subnets {
		if id := aws.ToString(sn.SubnetId); id == s.Seed.Subnet || id == s.Seed.Subnet2 {
			continue
		}
		if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: sn.SubnetId}); err != nil {
			return fmt.Errorf("deleting default subnet: %w", err)
		}
	}
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil {
		return err
	}
	for _, v := range vpcs.Vpcs {
		if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: v.VpcId}); err != nil {
			return fmt.Errorf("deleting default VPC: %w", err)
		}
	}
	return nil
}

func (s *Stack) seedIAM(ctx context.Context, c *iam.Client) error {
	s.Seed.InstanceProfile = "ci-runner-profile"
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ci-runner-role"), AssumeRolePolicyDocument: aws.String(examples.WorkerTrustPolicy)}); err != nil {
		return fmt.Errorf("creating role: %w", err)
	}
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(s.Seed.InstanceProfile)}); err != nil {
		return fmt.Errorf("creating instance profile: %w", err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(s.Seed.InstanceProfile), RoleName: aws.String("ci-runner-role")}); err != nil {
		return err
	}
	// moto checks policy grammar: the examples operators copy must be accepted.
	for name, doc := range map[string]string{"ec2-executor-manager": examples.ManagerPolicy, "ec2-executor-worker": examples.WorkerPolicy} {
		if _, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
			return fmt.Errorf("creating policy %s from examples/iam: %w", name, err)
		}
	}
	return nil
}
