// Package provisiontest holds a stateful, hand-written fake of provision.EC2API for
// unit tests. End-to-end tests use moto through the real SDK instead.
package provisiontest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2-executor/ec2-executor/settings"
)

// FakeEC2 keeps instances in memory. Instances run as soon as they are described,
// like moto's. Set the Err fields to inject failures; Calls counts each operation.
type FakeEC2 struct {
	mu        sync.Mutex
	next      int
	instances map[string]*types.Instance
	Inputs    []*ec2.RunInstancesInput
	Calls     map[string]int

	RunErr error
	// SubnetZone is every subnet's availability zone.
	SubnetZone string
	// ImageArch is an image's architecture (none when unset).
	ImageArch map[string]string
	// Capacity, when above 0, caps how many instances one RunInstances call launches
	// (EC2 launches fewer than MaxCount when it lacks capacity).
	Capacity int
	// RunFault, when set, may fail a RunInstances call by its input (say, no capacity
	// for one instance type).
	RunFault     func(*ec2.RunInstancesInput) error
	DescribeErr  error
	TerminateErr error
	// NeverRuns keeps instances pending forever; TerminateOnDescribe makes them die.
	NeverRuns           bool
	TerminateOnDescribe bool
}

// New returns an empty fake.
func New() *FakeEC2 {
	return &FakeEC2{instances: map[string]*types.Instance{}, Calls: map[string]int{}}
}

// APIError builds an error the SDK would return for an EC2 error code.
func APIError(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " (injected)"}
}

// RunInstances records the input and creates one pending instance.
func (f *FakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["RunInstances"]++
	f.Inputs = append(f.Inputs, in)
	if f.RunErr != nil {
		return nil, f.RunErr
	}
	if f.RunFault != nil {
		if err := f.RunFault(in); err != nil {
			return nil, err
		}
	}
	n := max(int(aws.ToInt32(in.MaxCount)), 1)
	if f.Capacity > 0 {
		n = min(n, f.Capacity)
	}
	out := &ec2.RunInstancesOutput{}
	for i := range n {
		out.Instances = append(out.Instances, *f.add(in, i))
	}
	return out, nil
}

// add creates one pending instance of a RunInstances call at launch index i.
func (f *FakeEC2) add(in *ec2.RunInstancesInput, i int) *types.Instance {
	f.next++
	inst := &types.Instance{
		InstanceId:       aws.String(fmt.Sprintf("i-%017x", f.next)),
		InstanceType:     in.InstanceType,
		SubnetId:         in.SubnetId,
		PrivateIpAddress: aws.String(fmt.Sprintf("127.0.1.%d", 3+f.next)),
		LaunchTime:       aws.Time(time.Now()),
		AmiLaunchIndex:   aws.Int32(int32(i)),
		State:            &types.InstanceState{Name: types.InstanceStateNamePending},
	}
	if in.InstanceMarketOptions != nil && in.InstanceMarketOptions.MarketType == types.MarketTypeSpot {
		inst.InstanceLifecycle = types.InstanceLifecycleTypeSpot
	}
	for _, spec := range in.TagSpecifications {
		if spec.ResourceType == types.ResourceTypeInstance {
			inst.Tags = append(inst.Tags, spec.Tags...)
		}
	}
	f.instances[*inst.InstanceId] = inst
	return inst
}

// DescribeInstances supports InstanceIds and the tag:, instance-state-name filters.
func (f *FakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["DescribeInstances"]++
	if f.DescribeErr != nil {
		return nil, f.DescribeErr
	}
	var out []types.Instance
	for _, id := range f.ids(in.InstanceIds) {
		inst, ok := f.instances[id]
		if !ok {
			return nil, APIError("InvalidInstanceID.NotFound")
		}
		f.advance(inst)
		if matches(inst, in.Filters) {
			out = append(out, *inst)
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: out}}}, nil
}

// DescribeImages reports /dev/xvda as the root device of any image.
func (f *FakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["DescribeImages"]++
	out := &ec2.DescribeImagesOutput{}
	for _, id := range in.ImageIds {
		out.Images = append(out.Images, types.Image{ImageId: aws.String(id), RootDeviceName: aws.String("/dev/xvda"), Architecture: types.ArchitectureValues(f.ImageArch[id])})
	}
	return out, nil
}

// DescribeSubnets puts every subnet in SubnetZone (us-east-1a when unset).
func (f *FakeEC2) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	zone := f.SubnetZone
	if zone == "" {
		zone = "us-east-1a"
	}
	out := &ec2.DescribeSubnetsOutput{}
	for _, id := range in.SubnetIds {
		out.Subnets = append(out.Subnets, types.Subnet{SubnetId: aws.String(id), AvailabilityZone: aws.String(zone)})
	}
	return out, nil
}

// DescribeInstanceTypes answers with the architecture validate gives each type
// (settings.ArchOf: Graviton families are arm64), as EC2 does for the common ones.
func (f *FakeEC2) DescribeInstanceTypes(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["DescribeInstanceTypes"]++
	out := &ec2.DescribeInstanceTypesOutput{}
	for _, t := range in.InstanceTypes {
		arch := types.ArchitectureType(settings.ArchOf(string(t)))
		out.InstanceTypes = append(out.InstanceTypes, types.InstanceTypeInfo{InstanceType: t,
			ProcessorInfo: &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{arch}}})
	}
	return out, nil
}

// TerminateInstances moves instances to terminated.
func (f *FakeEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["TerminateInstances"]++
	if f.TerminateErr != nil {
		return nil, f.TerminateErr
	}
	out := &ec2.TerminateInstancesOutput{}
	for _, id := range in.InstanceIds {
		inst, ok := f.instances[id]
		if !ok {
			return nil, APIError("InvalidInstanceID.NotFound")
		}
		inst.State = &types.InstanceState{Name: types.InstanceStateNameTerminated}
		out.TerminatingInstances = append(out.TerminatingInstances, types.InstanceStateChange{
			InstanceId: aws.String(id), CurrentState: &types.InstanceState{Name: types.InstanceStateNameShuttingDown}})
	}
	return out, nil
}

// CreateTags sets (or replaces) tags on existing instances.
func (f *FakeEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["CreateTags"]++
	for _, id := range in.Resources {
		inst, ok := f.instances[id]
		if !ok {
			return nil, APIError("InvalidInstanceID.NotFound")
		}
		for _, t := range in.Tags {
			inst.Tags = slices.DeleteFunc(inst.Tags, func(old types.Tag) bool { return aws.ToString(old.Key) == aws.ToString(t.Key) })
			inst.Tags = append(inst.Tags, t)
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

// StopInstances stops instances at once (EC2 passes through stopping).
func (f *FakeEC2) StopInstances(_ context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	return &ec2.StopInstancesOutput{}, f.setState("StopInstances", in.InstanceIds, types.InstanceStateNameStopped)
}

// StartInstances makes stopped instances pending (they run on the next describe).
func (f *FakeEC2) StartInstances(_ context.Context, in *ec2.StartInstancesInput, _ ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	return &ec2.StartInstancesOutput{}, f.setState("StartInstances", in.InstanceIds, types.InstanceStateNamePending)
}

func (f *FakeEC2) setState(action string, ids []string, state types.InstanceStateName) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls[action]++
	for _, id := range ids {
		inst, ok := f.instances[id]
		if !ok {
			return APIError("InvalidInstanceID.NotFound")
		}
		inst.State = &types.InstanceState{Name: state}
	}
	return nil
}

// Running lists the ids of instances not terminated.
func (f *FakeEC2) Running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, inst := range f.instances {
		if inst.State.Name != types.InstanceStateNameTerminated {
			ids = append(ids, id)
		}
	}
	return ids
}

func (f *FakeEC2) ids(want []string) []string {
	if len(want) > 0 {
		return want
	}
	all := make([]string, 0, len(f.instances))
	for id := range f.instances {
		all = append(all, id)
	}
	return all
}

func (f *FakeEC2) advance(inst *types.Instance) {
	switch {
	case inst.State.Name != types.InstanceStateNamePending:
	case f.TerminateOnDescribe:
		inst.State = &types.InstanceState{Name: types.InstanceStateNameTerminated}
		inst.StateReason = &types.StateReason{Message: aws.String("Server.InsufficientInstanceCapacity")}
	case !f.NeverRuns:
		inst.State = &types.InstanceState{Name: types.InstanceStateNameRunning}
	}
}

func matches(inst *types.Instance, filters []types.Filter) bool {
	for _, fl := range filters {
		name := aws.ToString(fl.Name)
		var got string
		switch {
		case name == "instance-state-name":
			got = string(inst.State.Name)
		case strings.HasPrefix(name, "tag:"):
			got = tagValue(inst, strings.TrimPrefix(name, "tag:"))
		default:
			continue
		}
		if !contains(fl.Values, got) {
			return false
		}
	}
	return true
}

func tagValue(inst *types.Instance, key string) string {
	for _, t := range inst.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return "\x00absent"
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
