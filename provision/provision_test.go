package provision_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	return provision.LaunchSpec{AMI: "ami-0123456789abcdef0", InstanceType: "t3.micro", SubnetID: "subnet-1",
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
