package provision

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-hclog"
)

// LaunchSpec is one worker to launch.
type LaunchSpec struct {
	AMI              string
	InstanceType     string
	SubnetID         string
	SecurityGroupIDs []string
	// InstanceProfile is an instance profile name or ARN; empty launches without one.
	InstanceProfile  string
	MetadataHopLimit int
	Tags             map[string]string
	UserData         []byte
	// ClientToken makes RunInstances idempotent across the SDK's own retries.
	ClientToken string
}

// Provisioner launches, finds and terminates workers.
type Provisioner struct {
	api EC2API
	log hclog.Logger
	// WaitTimeout bounds the wait for running; PollMin/PollMax pace the SDK waiter.
	WaitTimeout      time.Duration
	PollMin, PollMax time.Duration
	// RollbackTimeout bounds the terminate that follows a failed launch.
	RollbackTimeout time.Duration
}

// New returns a Provisioner with production pacing.
func New(api EC2API, log hclog.Logger) *Provisioner {
	return &Provisioner{api: api, log: log, WaitTimeout: 5 * time.Minute,
		PollMin: 2 * time.Second, PollMax: 15 * time.Second, RollbackTimeout: 2 * time.Minute}
}

// Create launches a worker, hands it to launched (which should persist its id before
// anything else can fail), and waits until it is running. If anything fails after
// RunInstances, the instance is terminated before Create returns.
func (p *Provisioner) Create(ctx context.Context, spec LaunchSpec, launched func(Instance) error) (Instance, error) {
	inst, err := p.run(ctx, spec)
	if err != nil {
		return Instance{}, err
	}
	if err := launched(inst); err != nil {
		return Instance{}, p.Rollback(ctx, inst.ID, err)
	}
	running, err := p.WaitRunning(ctx, inst.ID)
	if err != nil {
		return Instance{}, p.Rollback(ctx, inst.ID, err)
	}
	return running, nil
}

// Rollback terminates id on a context detached from ctx (which may be cancelled) and
// returns cause, joined with any termination failure.
func (p *Provisioner) Rollback(ctx context.Context, id string, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.RollbackTimeout)
	defer cancel()
	if err := p.Terminate(rctx, id); err != nil {
		return errors.Join(cause, fmt.Errorf("rolling back: %w", err))
	}
	p.log.Info("Terminated instance after a failed launch", "instance_id", id)
	return cause
}

func (p *Provisioner) run(ctx context.Context, spec LaunchSpec) (Instance, error) {
	out, err := p.api.RunInstances(ctx, runInput(spec))
	if err != nil {
		return Instance{}, fmt.Errorf("launching %s in %s: %w", spec.InstanceType, spec.SubnetID, err)
	}
	if len(out.Instances) != 1 {
		ids := make([]string, 0, len(out.Instances))
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
		for _, id := range ids {
			_ = p.Rollback(ctx, id, nil)
		}
		return Instance{}, fmt.Errorf("launching %s: RunInstances returned %d instances (%s), want 1", spec.InstanceType, len(ids), strings.Join(ids, ","))
	}
	return fromSDK(out.Instances[0]), nil
}

func runInput(spec LaunchSpec) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		ImageId:                           aws.String(spec.AMI),
		InstanceType:                      types.InstanceType(spec.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		SubnetId:                          aws.String(spec.SubnetID),
		SecurityGroupIds:                  spec.SecurityGroupIDs,
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
	}
	if spec.ClientToken != "" {
		in.ClientToken = aws.String(spec.ClientToken)
	}
	switch p := spec.InstanceProfile; {
	case strings.HasPrefix(p, "arn:"):
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
	case p != "":
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(p)}
	}
	return in
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
