package provision

import (
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// Choice is one combination of instance type, subnet and market to try.
type Choice struct {
	InstanceType string // empty: the launch template's
	SubnetID     string // empty: the launch template's
	Spot         bool
}

func (c Choice) String() string {
	typ, subnet, market := c.InstanceType, c.SubnetID, "on-demand"
	if typ == "" {
		typ = "the template's instance type"
	}
	if subnet == "" {
		subnet = "the template's subnet"
	}
	if c.Spot {
		market = "spot"
	}
	return typ + " in " + subnet + " (" + market + ")"
}

// Choices lists every type in every subnet, type by type, once per market in the
// order given (so spot-then-on-demand tries all spot choices first). Empty types or
// subnets stand for the launch template's.
func Choices(types, subnets []string, spot ...bool) []Choice {
	if len(types) == 0 {
		types = []string{""}
	}
	if len(subnets) == 0 {
		subnets = []string{""}
	}
	var out []Choice
	for _, s := range spot {
		for _, t := range types {
			for _, sn := range subnets {
				out = append(out, Choice{InstanceType: t, SubnetID: sn, Spot: s})
			}
		}
	}
	return out
}

// capacityCodes are the EC2 errors after which another type, subnet or market may
// succeed. Anything else (bad AMI, missing permission) fails the launch at once.
var capacityCodes = []string{
	"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
	"InstanceLimitExceeded", "VcpuLimitExceeded", "Unsupported",
	"MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow", "capacity-not-available",
	"InsufficientFreeAddressesInSubnet",
}

// capacityCode returns err's EC2 error code if it is a capacity error, else "".
func capacityCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && slices.Contains(capacityCodes, apiErr.ErrorCode()) {
		return apiErr.ErrorCode()
	}
	return ""
}

// launchAttempts is how often one RunInstances is tried when EC2 throttles it or
// fails on its side. Its request bucket holds 5 and refills 2 per second, so in a
// burst of jobs (the benchmark's 200) most launches are throttled for a minute or
// more; with the SDK's backoff (up to 20 s between tries) 15 tries wait about that
// long, where the SDK's default 3 failed most of the burst's jobs.
const launchAttempts = 15

// launchRetries retries a throttled launch patiently (launchAttempts) and stops the
// SDK from retrying a capacity error (EC2 sends some as HTTP 500): the next choice is
// a better retry than the same one after a backoff.
func launchRetries(o *ec2.Options) {
	if r, ok := retry.AddWithMaxAttempts(o.Retryer, launchAttempts).(aws.RetryerV2); ok {
		o.Retryer = capacityFinal{r}
	}
}

// patientRetries retries a termination or a lookup of one instance as patiently as a
// launch: a burst of jobs meets DescribeInstances' bucket (100, refilled at 20 per
// second) while they wait for their workers and the mutating actions' (50, at 5)
// when they end, and a wait or a cleanup that gives up fails the job or leaves its
// worker to the reaper.
func patientRetries(o *ec2.Options) {
	o.Retryer = retry.AddWithMaxAttempts(o.Retryer, launchAttempts)
}

type capacityFinal struct{ aws.RetryerV2 }

func (r capacityFinal) IsErrorRetryable(err error) bool {
	return capacityCode(err) == "" && r.RetryerV2.IsErrorRetryable(err)
}
