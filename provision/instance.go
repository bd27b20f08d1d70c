package provision

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Instance is what the driver needs to know about one worker.
type Instance struct {
	ID          string
	Type        string
	SubnetID    string
	Zone        string // availability zone
	State       string // pending, running, shutting-down, terminated, ...
	StateReason string // EC2's reason for the last state change, if any
	// StateReasonCode is the reason's code, e.g. Server.SpotInstanceTermination.
	StateReasonCode string
	PrivateIP       string
	PublicIP        string
	Spot            bool
	LaunchTime      time.Time
	// LaunchIndex is the instance's place in its RunInstances call (0 for a single
	// launch): which launch-index part of a batch's user data it applies.
	LaunchIndex int
	Tags        map[string]string
}

// Market is "spot" or "on-demand".
func (i Instance) Market() string {
	if i.Spot {
		return "spot"
	}
	return "on-demand"
}

// spotTermination is EC2's state-reason code for a spot instance it reclaimed.
const spotTermination = "Server.SpotInstanceTermination"

// Interrupted reports whether EC2 reclaimed the instance (a spot interruption), as
// opposed to someone or something terminating it.
func (i Instance) Interrupted() bool { return i.StateReasonCode == spotTermination }

// Gone reports whether the instance is terminated or on its way there.
func (i Instance) Gone() bool {
	return i.State == string(types.InstanceStateNameShuttingDown) || i.State == string(types.InstanceStateNameTerminated)
}

func fromSDK(in types.Instance) Instance {
	out := Instance{
		ID:          aws.ToString(in.InstanceId),
		Type:        string(in.InstanceType),
		SubnetID:    aws.ToString(in.SubnetId),
		PrivateIP:   aws.ToString(in.PrivateIpAddress),
		PublicIP:    aws.ToString(in.PublicIpAddress),
		Spot:        in.InstanceLifecycle == types.InstanceLifecycleTypeSpot,
		LaunchTime:  aws.ToTime(in.LaunchTime),
		LaunchIndex: int(aws.ToInt32(in.AmiLaunchIndex)),
		Tags:        map[string]string{},
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.StateReason != nil {
		out.StateReason = aws.ToString(in.StateReason.Message)
		out.StateReasonCode = aws.ToString(in.StateReason.Code)
	}
	for _, t := range in.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}
