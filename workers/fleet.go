package workers

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// maxPollInterval caps the backoff between DescribeInstances calls while a launch
// waits for running: past it a booted worker waits idle for the next look.
const maxPollInterval = 15 * time.Second

// Fleet is one manager's workers in EC2: it launches, reaches, releases, lists and
// reaps them. A stage process builds one from the AWS clients it was given; the
// pool builds one around its paced client.
type Fleet struct {
	s    settings.Settings
	ec2  provision.EC2API
	ssm  provision.SSMAPI
	log  hclog.Logger
	now  func() time.Time
	prov *provision.Provisioner // every EC2 call, paced with the instance settings
}

// Clients are the AWS clients a Fleet calls. A Fleet that only reaches workers it
// holds a lease for (a job's connection holder) needs none.
type Clients struct {
	EC2 provision.EC2API
	SSM provision.SSMAPI
}

// New builds the fleet of the manager s describes.
func New(s settings.Settings, c Clients, log hclog.Logger, now func() time.Time) *Fleet {
	p := provision.New(c.EC2, log)
	p.WaitTimeout = s.Instance.LaunchTimeout.Duration
	p.PollMin = s.Instance.PollInterval.Duration
	p.PollMax = max(p.PollMin, maxPollInterval)
	return &Fleet{s: s, ec2: c.EC2, ssm: c.SSM, log: log, now: now, prov: p}
}

// Settings are the settings the fleet was built with.
func (f *Fleet) Settings() settings.Settings { return f.s }

// sshHost is the address the driver reaches a worker on: private, or public when
// ssh.address says so.
func (f *Fleet) sshHost(inst provision.Instance) string {
	if f.s.SSHPublic() {
		return inst.PublicIP
	}
	return inst.PrivateIP
}
