package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LaunchSpec is one worker to launch: what every attempt shares, and the ordered
// choices of type, subnet and market to try on capacity errors.
type LaunchSpec struct {
	// AMI is an image id; empty leaves it to the launch template.
	AMI     string
	Choices []Choice
	// SecurityGroupIDs may be empty (the VPC's default group, or the template's).
	SecurityGroupIDs []string
	// InstanceProfile is an instance profile name or ARN; empty launches without one.
	InstanceProfile  string
	MetadataHopLimit int
	SpotMaxPrice     string
	EBSOptimized     bool
	Monitoring       bool
	// PublicIP asks for a public address on the primary network interface.
	PublicIP       bool
	RootVolume     Volume
	LaunchTemplate Template
	Tags           map[string]string
	UserData       []byte
	// ClientToken makes RunInstances idempotent across the SDK's own retries; each
	// choice gets its own token derived from it.
	ClientToken string
	// count is how many instances one call may launch (StartBatch), 1 otherwise.
	count int
}

// Template names a launch template whose values the spec's override.
type Template struct{ ID, Name, Version string }

// Volume overrides the AMI's root volume; the zero value keeps it.
type Volume struct {
	// DeviceName is the AMI's root device; Create looks it up when empty.
	DeviceName string
	SizeGiB    int32
	Type       string
	IOPS       int32
	Throughput int32
	Encrypted  bool
	KMSKeyID   string
}

// Provisioner launches, finds and terminates workers.
type Provisioner struct {
	api EC2API
	log hclog.Logger
	// WaitTimeout bounds the wait for running; PollMin/PollMax pace the SDK waiter.
	WaitTimeout      time.Duration
	PollMin, PollMax time.Duration
	// RollbackTimeout bounds the terminate that follows a failed launch.
	RollbackTimeout time.Duration
}

// New returns a Provisioner with production pacing.
func New(api EC2API, log hclog.Logger) *Provisioner {
	return &Provisioner{api: api, log: log, WaitTimeout: 5 * time.Minute,
		PollMin: 2 * time.Second, PollMax: 15 * time.Second, RollbackTimeout: 2 * time.Minute}
}

// Create launches a worker from the first choice EC2 has capacity for, hands it to
// launched (which should persist its id before anything else can fail), and waits
// until it is running. If anything fails after RunInstances, the instance is
// terminated before Create returns.
func (p *Provisioner) Create(ctx context.Context, spec LaunchSpec, launched func(Instance) error) (Instance, error) {
	inst, err := p.Start(ctx, spec, launched)
	if err != nil {
		return Instance{}, err
	}
	running, err := p.WaitRunning(ctx, inst.ID)
	if err != nil {
		return Instance{}, p.Rollback(ctx, inst.ID, err)
	}
	return running, nil
}

// Start launches a worker from the first choice EC2 has capacity for and hands it
// to launched, as Create does, but does not wait for it to run: a caller that
// watches many workers (the pool) learns their state from one DescribeInstances
// for all of them instead of a waiter per worker.
func (p *Provisioner) Start(ctx context.Context, spec LaunchSpec, launched func(Instance) error) (Instance, error) {
	insts, err := p.StartBatch(ctx, spec, 1, func(is []Instance) error { return launched(is[0]) })
	if err != nil {
		return Instance{}, err
	}
	return insts[0], nil
}

// StartBatch launches up to count workers with one RunInstances call (MinCount 1,
// MaxCount count: EC2 launches as many as it has capacity for) from the first choice
// that has any, hands them to launched and does not wait for them to run. Each
// instance's LaunchIndex says which part of a batch's user data it applies.
func (p *Provisioner) StartBatch(ctx context.Context, spec LaunchSpec, count int, launched func([]Instance) error) ([]Instance, error) {
	if len(spec.Choices) == 0 {
		return nil, errors.New("launching: no instance type and subnet to try")
	}
	if err := p.resolveRootDevice(ctx, &spec); err != nil {
		return nil, err
	}
	spec.count = max(count, 1)
	insts, err := p.runFirstAvailable(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := launched(insts); err != nil {
		var errs []error
		for _, in := range insts {
			errs = append(errs, p.Rollback(ctx, in.ID, nil))
		}
		return nil, errors.Join(append(errs, err)...)
	}
	return insts, nil
}

// Rollback terminates id on a context detached from ctx (which may be cancelled) and
// returns cause, joined with any termination failure.
func (p *Provisioner) Rollback(ctx context.Context, id string, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.RollbackTimeout)
	defer cancel()
	if err := p.Terminate(rctx, id); err != nil {
		return errors.Join(cause, fmt.Errorf("rolling back: %w", err))
	}
	p.log.Info("Terminated instance "+id+" after a failed launch", "instance_id", id)
	return cause
}

// runFirstAvailable walks the choices in order, moving on only on capacity errors,
// and says in the job log what it tried.
func (p *Provisioner) runFirstAvailable(ctx context.Context, spec LaunchSpec) ([]Instance, error) {
	var tried []string
	for n, c := range spec.Choices {
		p.log.Info("Launching "+c.String(), "ami", spec.AMI)
		insts, err := p.run(ctx, spec, c, fmt.Sprintf("%s-%d", spec.ClientToken, n))
		if err == nil {
			return insts, nil
		}
		code := capacityCode(err)
		if code == "" {
			return nil, err
		}
		tried = append(tried, c.String()+": "+code)
		if n+1 < len(spec.Choices) {
			p.log.Warn("No capacity for "+c.String()+" ("+code+"); trying "+spec.Choices[n+1].String(), "error_code", code)
		}
	}
	return nil, fmt.Errorf("launching: no capacity for any choice (%s)", strings.Join(tried, "; "))
}

func (p *Provisioner) run(ctx context.Context, spec LaunchSpec, c Choice, token string) ([]Instance, error) {
	out, err := p.api.RunInstances(ctx, runInput(spec, c, token), launchRetries)
	if err != nil {
		return nil, fmt.Errorf("launching %s: %w", c, err)
	}
	insts := make([]Instance, 0, len(out.Instances))
	for _, in := range out.Instances {
		insts = append(insts, fromSDK(in))
	}
	if n := len(insts); n >= 1 && n <= spec.count {
		return insts, nil
	}
	ids := make([]string, 0, len(insts))
	for _, in := range insts {
		ids = append(ids, in.ID)
		_ = p.Rollback(ctx, in.ID, nil)
	}
	return nil, fmt.Errorf("launching %s: RunInstances returned %d instances (%s), want 1 to %d", c, len(ids), strings.Join(ids, ","), spec.count)
}
