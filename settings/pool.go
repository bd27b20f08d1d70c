package settings

import (
	"errors"
	"path/filepath"
	"time"
)

// Pool is the warm pool that `ec2-executor pool` keeps and prepare claims from.
type Pool struct {
	// IdleCount is how many workers the pool keeps booted and ready (sshd answers
	// with the pinned key, Docker answers, PrepullImages are pulled) for jobs.
	IdleCount int `toml:"idle_count"`
	// StoppedCount is how many more workers the pool boots once (until ready, images
	// pulled) and then stops: they cost only their disks, and a claim that finds no
	// idle worker starts one. On-demand only: a spot instance cannot be started again.
	StoppedCount int `toml:"stopped_count"`
	// IdleTime is how long an idle worker above IdleCount may wait before it is
	// terminated.
	IdleTime Duration `toml:"idle_time"`
	// ScaleFactor makes idle capacity follow demand: the pool keeps
	// ScaleFactor × (this manager's workers in use) idle workers, rounded up, at most
	// ScaleFactorLimit (0: no limit), never fewer than IdleCount and never more than
	// MaxInstances allows. 0 is a fixed IdleCount.
	ScaleFactor      float64 `toml:"scale_factor"`
	ScaleFactorLimit int     `toml:"scale_factor_limit"`
	// MaxInstances caps this manager's workers, busy plus idle plus booting; 0 is no
	// cap. A claim at the cap waits up to ClaimTimeout for a worker.
	MaxInstances int      `toml:"max_instances"`
	ClaimTimeout Duration `toml:"claim_timeout"`
	// Socket is the unix socket prepare claims through; empty means
	// <state_dir>/pool.sock. SocketGroup may also claim (besides the pool's own user
	// and root), checked on each peer's credentials, not only the file mode.
	Socket      string `toml:"socket"`
	SocketGroup string `toml:"socket_group"`
	// MetricsListen is the address of the Prometheus /metrics endpoint; empty is off.
	MetricsListen string `toml:"metrics_listen"`
	// PrepullImages are pulled on every pool worker before it counts as ready.
	PrepullImages []string `toml:"prepull_images"`
	// TerminateOnShutdown terminates idle workers on SIGTERM instead of leaving them
	// for the next start to adopt.
	TerminateOnShutdown bool `toml:"terminate_on_shutdown"`
	// PollInterval is how often the pool asks EC2 (one DescribeInstances) about its
	// workers and acts on what it learns.
	PollInterval Duration `toml:"poll_interval"`
	// LaunchesPerSecond paces the pool's RunInstances calls below EC2's bucket (5
	// requests, refilled at 2 per second) with a burst of 2.
	LaunchesPerSecond float64 `toml:"launches_per_second"`
	// MaxBuilds is how many jobs one worker serves: 1 is a fresh worker per job.
	// Above 1 a worker goes back to the pool after cleanup, wiped of the last job's
	// containers, volumes and networks, until it has served MaxBuilds jobs.
	MaxBuilds int `toml:"max_builds"`
	// ReuseScope is who may get a used worker: "project" (jobs of the same project)
	// or "runner" (any job of this runner).
	ReuseScope string `toml:"reuse_scope"`
	// ReusePrivileged allows MaxBuilds above 1 for privileged jobs, which can change
	// their worker for the next job: an explicit opt-in.
	ReusePrivileged bool `toml:"reuse_privileged"`
	// Schedule resizes the pool by time of day ([[pool.schedule]] entries).
	Schedule []PoolSchedule `toml:"schedule"`
	// ARM64 and X86_64 keep idle workers of the architecture instance.types are not
	// (booting [instance.<arch>]'s image and types), for the jobs that ask for it:
	// the settings above size the pool of instance.types' architecture.
	ARM64  PoolArch `toml:"arm64"`
	X86_64 PoolArch `toml:"x86_64"`
}

// PoolArch sizes the pool's idle workers of one architecture.
type PoolArch struct {
	// IdleCount idle workers of the architecture are kept ready; one beyond it
	// waits pool.idle_time before it ends.
	IdleCount int `toml:"idle_count"`
}

// ArchIdle is how many idle workers of arch the [pool.<arch>] section asks for.
func (p Pool) ArchIdle(arch string) int {
	if arch == ArchARM {
		return p.ARM64.IdleCount
	}
	return p.X86_64.IdleCount
}

// Reuse scopes.
const (
	ReuseProject = "project"
	ReuseRunner  = "runner"
)

func defaultPool() Pool {
	return Pool{IdleTime: Duration{30 * time.Minute}, ClaimTimeout: Duration{5 * time.Minute},
		PollInterval: Duration{10 * time.Second}, LaunchesPerSecond: 1, MaxBuilds: 1, ReuseScope: ReuseProject}
}

// Configured says the settings ask for a warm pool (idle or stopped workers, idle
// workers by demand, a schedule or a socket of its own): a job then expects one to
// answer.
func (p Pool) Configured() bool {
	return p.IdleCount > 0 || p.StoppedCount > 0 || p.ScaleFactor > 0 || len(p.Schedule) > 0 || p.Socket != "" ||
		p.ARM64.IdleCount > 0 || p.X86_64.IdleCount > 0
}

// PoolSocket is where the pool listens and prepare claims.
func (s Settings) PoolSocket() string {
	if s.Pool.Socket != "" {
		return s.Pool.Socket
	}
	return filepath.Join(s.StateDir, "pool.sock")
}

func (p Pool) validate(add func(error), market string) {
	if p.IdleCount < 0 {
		add(problem("pool.idle_count", "must not be negative"))
	}
	if p.StoppedCount < 0 {
		add(problem("pool.stopped_count", "must not be negative"))
	}
	if p.StoppedCount > 0 && market != MarketOnDemand {
		add(problem("pool.stopped_count", "needs instance.market = %q: EC2 cannot start a stopped spot instance again (it is %q)", MarketOnDemand, market))
	}
	if p.MaxInstances > 0 && p.StoppedCount+p.IdleCount > p.MaxInstances {
		add(problem("pool.stopped_count", "pool.idle_count + pool.stopped_count (%d) is more than pool.max_instances (%d)", p.IdleCount+p.StoppedCount, p.MaxInstances))
	}
	if p.MaxInstances < 0 {
		add(problem("pool.max_instances", "must not be negative (0 is no cap)"))
	}
	if p.MaxInstances > 0 && p.IdleCount > p.MaxInstances {
		add(problem("pool.idle_count", "%d is more than pool.max_instances (%d)", p.IdleCount, p.MaxInstances))
	}
	positive(add, "pool.idle_time", p.IdleTime.Duration)
	if p.ScaleFactor < 0 || p.ScaleFactorLimit < 0 {
		add(problem("pool.scale_factor", "scale_factor and scale_factor_limit must not be negative"))
	}
	if p.MaxBuilds < 1 {
		add(problem("pool.max_builds", "must be at least 1 (1 is a fresh worker per job), got %d", p.MaxBuilds))
	}
	if p.ReuseScope != ReuseProject && p.ReuseScope != ReuseRunner {
		add(problem("pool.reuse_scope", "%q is not %q or %q", p.ReuseScope, ReuseProject, ReuseRunner))
	}
	for i, e := range p.Schedule {
		e.validate(add, i, market, p.MaxInstances)
	}
	positive(add, "pool.claim_timeout", p.ClaimTimeout.Duration)
	positive(add, "pool.poll_interval", p.PollInterval.Duration)
	if p.LaunchesPerSecond <= 0 || p.LaunchesPerSecond > 2 {
		add(problem("pool.launches_per_second", "must be above 0 and at most 2 (EC2 refills RunInstances at 2 per second)"))
	}
}

// validateErr joins the pool section's problems (for tests and callers that check
// the section alone).
func (p Pool) validateErr(market string) error {
	var errs []error
	p.validate(func(e error) { errs = append(errs, e) }, market)
	return errors.Join(errs...)
}
