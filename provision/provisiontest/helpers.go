package provisiontest

import (
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Launched puts a t3.micro instance with tags into the fake, as RunInstances with
// those tags would, and returns its id. It counts as a RunInstances call.
func (f *FakeEC2) Launched(t testing.TB, tags map[string]string) string {
	t.Helper()
	var sdk []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		sdk = append(sdk, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	out, err := f.RunInstances(t.Context(), &ec2.RunInstancesInput{InstanceType: types.InstanceTypeT3Micro, SubnetId: aws.String("subnet-1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: sdk}}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// AssertRunning fails t unless exactly the instances want are not terminated.
func (f *FakeEC2) AssertRunning(t testing.TB, want ...string) {
	t.Helper()
	got := f.Running()
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("running %v, want %v", got, want)
	}
}
