package stages

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// DriverName is reported to the runner ("Using Custom executor with driver ...").
const DriverName = "ec2-executor"

// Driver runs one stage. main builds it; each field is a real dependency.
type Driver struct {
	Settings settings.Settings
	Env      RunnerEnv
	Log      hclog.Logger
	// Stdout is protocol: config's JSON, or the job's own output in run.
	Stdout io.Writer
	// Stderr carries the job's stderr in run.
	Stderr  io.Writer
	Version string
	// NewAWS builds the AWS clients only for stages that need them, so config and a
	// broken AWS setup never cost an API call.
	NewAWS func(ctx context.Context) (Clients, error)
	Now    func() time.Time
}

// Clients are the AWS APIs the stages call.
type Clients struct {
	EC2 provision.EC2API
	SSM provision.SSMAPI
	// ECR returns a client for a registry's region (manager-mode ECR tokens).
	ECR func(ctx context.Context, region string) (dockerauth.ECRAPI, error)
}

func (d *Driver) store() Store { return Store{Dir: d.Settings.StateDir + "/jobs"} }

func (d *Driver) provisioner(ctx context.Context) (*provision.Provisioner, Clients, error) {
	c, err := d.NewAWS(ctx)
	if err != nil {
		return nil, c, err
	}
	p := provision.New(c.EC2, d.Log)
	p.WaitTimeout = d.Settings.Instance.LaunchTimeout.Duration
	p.PollMin = d.Settings.Instance.PollInterval.Duration
	p.PollMax = max(p.PollMin, 15*time.Second)
	return p, c, nil
}
