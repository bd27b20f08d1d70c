package stages

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
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
	// StartHolder starts `hold` for a job in the background (holder.go); nil starts none.
	StartHolder func(key string) error
}

// Clients are the AWS APIs the stages call.
type Clients struct {
	EC2 provision.EC2API
	SSM provision.SSMAPI
	// ECR returns a client for a registry's region (manager-mode ECR tokens).
	ECR func(ctx context.Context, region string) (dockerauth.ECRAPI, error)
	// Spot reads spot prices, for what a spot worker cost its job.
	Spot prices.SpotAPI
}

func (d *Driver) store() Store { return Store{Dir: d.Settings.StateDir + "/jobs"} }

// fleet returns the manager's workers with the AWS clients, built on first use.
func (d *Driver) fleet(ctx context.Context) (*workers.Fleet, Clients, error) {
	c, err := d.NewAWS(ctx)
	if err != nil {
		return nil, c, err
	}
	return workers.New(d.Settings, workers.Clients{EC2: c.EC2, SSM: c.SSM}, d.Log, d.Now), c, nil
}

// holder answers the reaper from this manager's job states.
func (d *Driver) holder(key string) (string, error) {
	st, err := d.store().Load(key)
	return st.InstanceID, err
}

// Reap terminates the workers no job holds any more (the `reap` command) and
// prints a line for each.
func (d *Driver) Reap(ctx context.Context, opts workers.ReapOptions, out io.Writer) error {
	f, _, err := d.fleet(ctx)
	if err != nil {
		return err
	}
	done, err := f.Reap(ctx, opts, d.holder)
	for _, r := range done {
		fmt.Fprintln(out, r)
	}
	return err
}

// Instances lists this manager's workers, or every manager's (the `instances` command).
func (d *Driver) Instances(ctx context.Context, allManagers bool, out io.Writer) error {
	f, _, err := d.fleet(ctx)
	if err != nil {
		return err
	}
	return f.List(ctx, allManagers, out)
}
