package stages

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

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
	// NewEC2 builds the EC2 client only for stages that need one, so config and a
	// broken AWS setup never cost an API call.
	NewEC2 func(ctx context.Context) (provision.EC2API, error)
	Now    func() time.Time
}

func (d *Driver) store() Store { return Store{Dir: d.Settings.StateDir + "/jobs"} }

func (d *Driver) provisioner(ctx context.Context) (*provision.Provisioner, error) {
	api, err := d.NewEC2(ctx)
	if err != nil {
		return nil, err
	}
	p := provision.New(api, d.Log)
	p.WaitTimeout = d.Settings.Instance.LaunchTimeout.Duration
	p.PollMin = d.Settings.Instance.PollInterval.Duration
	p.PollMax = max(p.PollMin, 15*time.Second)
	return p, nil
}
