package workers

import (
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
)

func TestEC2HasTheLastWordOnAWorkersArchitectureAskedOnce(t *testing.T) {
	f := provisiontest.New()
	f.ImageArch = map[string]string{"ami-0123456789abcdef0": "x86_64", "ami-0a64a64a64a64a64a": "arm64"}
	fl := testFleet(t, f)
	in := fl.s.Instance
	for range 2 {
		if _, err := fl.launchSpec(t.Context(), in, Job{Key: "1-a"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.Calls["DescribeInstanceTypes"] != 1 || f.Calls["DescribeImages"] != 1 {
		t.Fatalf("calls %v: each type and image is asked about once", f.Calls)
	}
	in.AMI = "ami-0a64a64a64a64a64a"
	_, err := fl.launchSpec(t.Context(), in, Job{Key: "2-a"}, nil)
	if err == nil || !strings.Contains(err.Error(), "AMI ami-0a64a64a64a64a64a boots arm64 (EC2's DescribeImages), but its instance types (c6i.large) are x86_64") {
		t.Fatalf("an arm64 AMI for x86_64 types: %v", err)
	}
	in.AMI, in.Types = "ami-0123456789abcdef0", []string{"c6i.large", "r8g.large"} // validate would refuse the mix; EC2 is asked anyway
	_, err = fl.launchSpec(t.Context(), in, Job{Key: "3-a"}, nil)
	if err == nil || !strings.Contains(err.Error(), "instance type r8g.large is arm64 (EC2's DescribeInstanceTypes), not x86_64 like c6i.large: list it under [instance.arm64].types") {
		t.Fatalf("an arm64 type among x86_64 ones: %v", err)
	}
}
