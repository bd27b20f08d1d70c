package workers

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// Fleet is one manager's workers in EC2: it launches, reaches, releases, lists and
// reaps them. Stages build one per process from the AWS clients they were given.
type Fleet struct {
	Settings settings.Settings
	EC2      provision.EC2API
	SSM      provision.SSMAPI
	Log      hclog.Logger
	Now      func() time.Time
}

// provisioner paces EC2 calls with the instance settings.
func (f *Fleet) provisioner() *provision.Provisioner {
	p := provision.New(f.EC2, f.Log)
	p.WaitTimeout = f.Settings.Instance.LaunchTimeout.Duration
	p.PollMin = f.Settings.Instance.PollInterval.Duration
	p.PollMax = max(p.PollMin, 15*time.Second)
	return p
}

// sshHost is the address the driver reaches a worker on: private, or public when
// ssh.address says so.
func (f *Fleet) sshHost(inst provision.Instance) string {
	if f.Settings.SSHPublic() {
		return inst.PublicIP
	}
	return inst.PrivateIP
}
