package provision_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
)

func newProvisioner(f *provisiontest.FakeEC2) *provision.Provisioner {
	p := provision.New(f, hclog.NewNullLogger())
	p.PollMin, p.PollMax, p.WaitTimeout = time.Millisecond, 5*time.Millisecond, 200*time.Millisecond
	return p
}

func spec() provision.LaunchSpec {
	return provision.LaunchSpec{AMI: "ami-0123456789abcdef0", Choices: provision.Choices([]string{"t3.micro"}, []string{"subnet-1"}, false),
		SecurityGroupIDs: []string{"sg-1"}, InstanceProfile: "ci-worker", MetadataHopLimit: 1,
		Tags: map[string]string{"managed-by": "ec2-executor", "ec2-executor:job-key": "42-abc"}, UserData: []byte("#cloud-config\n")}
}

func TestCreateSendsEveryOptionInOneCall(t *testing.T) {
	f := provisiontest.New()
	var persisted string
	inst, err := newProvisioner(f).Create(t.Context(), spec(), func(i provision.Instance) error { persisted = i.ID; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != "running" || persisted != inst.ID {
		t.Fatalf("instance %+v, persisted %q", inst, persisted)
	}
	in := f.Inputs[0]
	if aws.ToString(in.IamInstanceProfile.Name) != "ci-worker" || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired ||
		aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit) != 1 || in.InstanceInitiatedShutdownBehavior != types.ShutdownBehaviorTerminate {
		t.Fatalf("launch options not sent: %+v", in)
	}
	if ud, _ := base64.StdEncoding.DecodeString(aws.ToString(in.UserData)); string(ud) != "#cloud-config\n" {
		t.Fatalf("user data not base64 of the rendered config: %q", ud)
	}
	if len(in.TagSpecifications) != 2 || len(in.TagSpecifications[0].Tags) != 2 {
		t.Fatalf("tags not applied at launch: %+v", in.TagSpecifications)
	}
}

func TestCreateAcceptsProfileARN(t *testing.T) {
	f := provisiontest.New()
	s := spec()
	s.InstanceProfile = "arn:aws:iam::123456789012:instance-profile/ci"
	if _, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.Inputs[0].IamInstanceProfile.Arn) != s.InstanceProfile || f.Inputs[0].IamInstanceProfile.Name != nil {
		t.Fatalf("ARN not passed as Arn: %+v", f.Inputs[0].IamInstanceProfile)
	}
}

func TestCreateTerminatesWhenPersistingFails(t *testing.T) {
	f := provisiontest.New()
	_, err := newProvisioner(f).Create(t.Context(), spec(), func(provision.Instance) error { return errors.New("disk full") })
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want the persist error, got %v", err)
	}
	if running := f.Running(); len(running) != 0 {
		t.Fatalf("leaked %v", running)
	}
}

func TestCreateTerminatesInstanceThatNeverRuns(t *testing.T) {
	f := provisiontest.New()
	f.NeverRuns = true
	_, err := newProvisioner(f).Create(t.Context(), spec(), func(provision.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "waiting for") {
		t.Fatalf("want a wait error, got %v", err)
	}
	if running := f.Running(); len(running) != 0 {
		t.Fatalf("leaked %v", running)
	}
}

func TestCreateNamesStateReasonWhenInstanceDies(t *testing.T) {
	f := provisiontest.New()
	f.TerminateOnDescribe = true
	_, err := newProvisioner(f).Create(t.Context(), spec(), func(provision.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "terminated (Server.InsufficientInstanceCapacity)") {
		t.Fatalf("want the state reason, got %v", err)
	}
}

func TestCreateTerminatesEvenWhenJobContextIsCancelled(t *testing.T) {
	f := provisiontest.New()
	ctx, cancel := context.WithCancel(t.Context())
	_, err := newProvisioner(f).Create(ctx, spec(), func(provision.Instance) error { cancel(); return context.Canceled })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if running := f.Running(); len(running) != 0 {
		t.Fatalf("leaked %v after cancel", running)
	}
}

func TestRunInstancesErrorNamesTypeAndSubnet(t *testing.T) {
	f := provisiontest.New()
	f.RunErr = provisiontest.APIError("InsufficientInstanceCapacity")
	_, err := newProvisioner(f).Create(t.Context(), spec(), func(provision.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "t3.micro in subnet-1") || !strings.Contains(err.Error(), "InsufficientInstanceCapacity") {
		t.Fatalf("got %v", err)
	}
}

func TestCreateFallsBackAcrossSubnetsTypesAndMarkets(t *testing.T) {
	f := provisiontest.New()
	// No capacity anywhere except c5.large on demand in subnet-b.
	f.RunFault = func(in *ec2.RunInstancesInput) error {
		if in.InstanceType == "c5.large" && aws.ToString(in.SubnetId) == "subnet-b" && in.InstanceMarketOptions == nil {
			return nil
		}
		return provisiontest.APIError("InsufficientInstanceCapacity")
	}
	s := spec()
	s.Choices = provision.Choices([]string{"c6i.large", "c5.large"}, []string{"subnet-a", "subnet-b"}, true, false)
	var log strings.Builder
	p := provision.New(f, hclog.New(&hclog.LoggerOptions{Output: &log}))
	p.PollMin, p.PollMax = time.Millisecond, time.Millisecond
	inst, err := p.Create(t.Context(), s, func(provision.Instance) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if inst.Type != "c5.large" || inst.SubnetID != "subnet-b" || inst.Spot {
		t.Fatalf("launched %+v", inst)
	}
	var tried []string
	tokens := map[string]bool{}
	for _, in := range f.Inputs {
		tried = append(tried, fmt.Sprintf("%s/%s/%v", in.InstanceType, aws.ToString(in.SubnetId), in.InstanceMarketOptions != nil))
		tokens[aws.ToString(in.ClientToken)] = true
	}
	want := "c6i.large/subnet-a/true c6i.large/subnet-b/true c5.large/subnet-a/true c5.large/subnet-b/true c6i.large/subnet-a/false c6i.large/subnet-b/false c5.large/subnet-a/false c5.large/subnet-b/false"
	if strings.Join(tried, " ") != want {
		t.Fatalf("tried %v\nwant  %s", tried, want)
	}
	if len(tokens) != len(f.Inputs) {
		t.Fatalf("client tokens reused across choices: %v", tokens)
	}
	if !strings.Contains(log.String(), "No capacity for c6i.large in subnet-a (spot) (InsufficientInstanceCapacity); trying c6i.large in subnet-b (spot)") {
		t.Fatalf("fallback not logged:\n%s", log.String())
	}
}

func TestCreateStopsAtTheFirstNonCapacityError(t *testing.T) {
	f := provisiontest.New()
	f.RunErr = provisiontest.APIError("InvalidAMIID.NotFound")
	s := spec()
	s.Choices = provision.Choices([]string{"c6i.large", "c5.large"}, []string{"subnet-a"}, false)
	_, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "InvalidAMIID.NotFound") || f.Calls["RunInstances"] != 1 {
		t.Fatalf("got %v after %d calls", err, f.Calls["RunInstances"])
	}
}

func TestCreateReportsEveryChoiceWhenNoneHasCapacity(t *testing.T) {
	f := provisiontest.New()
	f.RunErr = provisiontest.APIError("InsufficientInstanceCapacity")
	s := spec()
	s.Choices = provision.Choices([]string{"c6i.large"}, []string{"subnet-a", "subnet-b"}, false)
	_, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "c6i.large in subnet-a (on-demand): InsufficientInstanceCapacity; c6i.large in subnet-b") {
		t.Fatalf("got %v", err)
	}
}

func TestSpotVolumeTemplateAndPublicAddressReachRunInstances(t *testing.T) {
	f := provisiontest.New()
	s := spec()
	s.Choices = provision.Choices([]string{"c6i.large"}, []string{"subnet-a"}, true)
	s.SpotMaxPrice = "0.05"
	s.EBSOptimized, s.Monitoring, s.PublicIP = true, true, true
	s.RootVolume = provision.Volume{SizeGiB: 40, Type: "gp3", IOPS: 4000, Throughput: 250, Encrypted: true}
	s.LaunchTemplate = provision.Template{Name: "ci", Version: "$Latest"}
	inst, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	in := f.Inputs[0]
	mo := in.InstanceMarketOptions
	if !inst.Spot || mo.SpotOptions.InstanceInterruptionBehavior != types.InstanceInterruptionBehaviorTerminate || aws.ToString(mo.SpotOptions.MaxPrice) != "0.05" {
		t.Fatalf("spot options: %+v", mo)
	}
	bd := in.BlockDeviceMappings[0]
	if aws.ToString(bd.DeviceName) != "/dev/xvda" || aws.ToInt32(bd.Ebs.VolumeSize) != 40 || bd.Ebs.VolumeType != "gp3" ||
		aws.ToInt32(bd.Ebs.Iops) != 4000 || aws.ToInt32(bd.Ebs.Throughput) != 250 || !aws.ToBool(bd.Ebs.Encrypted) || !aws.ToBool(bd.Ebs.DeleteOnTermination) {
		t.Fatalf("root volume: %+v %+v", bd, bd.Ebs)
	}
	if f.Calls["DescribeImages"] != 1 {
		t.Fatalf("root device not looked up: %v", f.Calls)
	}
	ni := in.NetworkInterfaces[0]
	if in.SubnetId != nil || aws.ToString(ni.SubnetId) != "subnet-a" || !aws.ToBool(ni.AssociatePublicIpAddress) || ni.Groups[0] != "sg-1" {
		t.Fatalf("public address: %+v", ni)
	}
	if aws.ToString(in.LaunchTemplate.LaunchTemplateName) != "ci" || aws.ToString(in.LaunchTemplate.Version) != "$Latest" ||
		!aws.ToBool(in.EbsOptimized) || !aws.ToBool(in.Monitoring.Enabled) {
		t.Fatalf("template/ebs/monitoring: %+v", in)
	}
}

func TestTemplateSuppliesWhatSettingsLeaveOut(t *testing.T) {
	f := provisiontest.New()
	s := provision.LaunchSpec{Choices: provision.Choices(nil, nil, false), LaunchTemplate: provision.Template{ID: "lt-0123456789abcdef0"},
		MetadataHopLimit: 1, Tags: map[string]string{"managed-by": "ec2-executor"}}
	if _, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	in := f.Inputs[0]
	if in.ImageId != nil || in.InstanceType != "" || in.SubnetId != nil || in.MetadataOptions == nil {
		t.Fatalf("template values overridden by empty settings: %+v", in)
	}
	s.RootVolume = provision.Volume{SizeGiB: 50}
	if _, err := newProvisioner(f).Create(t.Context(), s, func(provision.Instance) error { return nil }); err == nil || !strings.Contains(err.Error(), "device name") {
		t.Fatalf("want a device-name error, got %v", err)
	}
}

func TestFindByTagsAndTerminateIsIdempotent(t *testing.T) {
	f := provisiontest.New()
	p := newProvisioner(f)
	inst, err := p.Create(t.Context(), spec(), func(provision.Instance) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	found, err := p.Find(t.Context(), map[string]string{"ec2-executor:job-key": "42-abc"})
	if err != nil || len(found) != 1 || found[0].ID != inst.ID {
		t.Fatalf("found %v, %v", found, err)
	}
	if other, _ := p.Find(t.Context(), map[string]string{"ec2-executor:job-key": "43-def"}); len(other) != 0 {
		t.Fatalf("tag filter matched another job: %v", other)
	}
	for range 2 {
		if err := p.Terminate(t.Context(), inst.ID); err != nil {
			t.Fatal(err)
		}
	}
	if gone, _ := p.Find(t.Context(), map[string]string{"ec2-executor:job-key": "42-abc"}); len(gone) != 0 {
		t.Fatalf("terminated instance still found: %v", gone)
	}
	if err := p.Terminate(t.Context(), "i-unknown"); err != nil {
		t.Fatalf("unknown instance should count as terminated: %v", err)
	}
}

func TestInterruptedOnlyForSpotReclaims(t *testing.T) {
	for code, want := range map[string]bool{"Server.SpotInstanceTermination": true, "Client.UserInitiatedShutdown": false, "": false} {
		if got := (provision.Instance{State: "terminated", StateReasonCode: code}).Interrupted(); got != want {
			t.Errorf("%q: Interrupted() = %v", code, got)
		}
	}
}
