package settings

import (
	"fmt"
	"math"
	"time"

	"github.com/robfig/cron/v3"
)

// PoolSchedule sizes the pool during some periods, as docker+machine's
// [[runners.machine.autoscaling]] entries do: the last entry with a period that
// matches the current minute wins; outside every period the [pool] values apply.
type PoolSchedule struct {
	// Periods are cron expressions (minute hour day-of-month month day-of-week, with an
	// optional leading seconds field as docker+machine writes them) in Timezone.
	Periods      []string `toml:"periods"`
	Timezone     string   `toml:"timezone"`
	IdleCount    int      `toml:"idle_count"`
	StoppedCount int      `toml:"stopped_count"`
	IdleTime     Duration `toml:"idle_time"`
	// ScaleFactor and ScaleFactorLimit replace the [pool] ones in these periods, as
	// docker-autoscaler's policies do (0: a fixed IdleCount then).
	ScaleFactor      float64 `toml:"scale_factor"`
	ScaleFactorLimit int     `toml:"scale_factor_limit"`
}

// cronParser reads five fields, or six with seconds first.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Matches reports whether now falls in one of the entry's periods.
func (e PoolSchedule) Matches(now time.Time) bool {
	loc, err := time.LoadLocation(e.Timezone)
	if err != nil {
		return false
	}
	minute := now.In(loc).Truncate(time.Minute)
	for _, p := range e.Periods {
		if s, err := cronParser.Parse(p); err == nil && s.Next(minute.Add(-time.Nanosecond)).Equal(minute) {
			return true
		}
	}
	return false
}

// PoolSize is how large the pool should be now: the last matching schedule entry's
// counts and idle time, else the [pool] section's.
func (p Pool) PoolSize(now time.Time) (idle, stopped int, idleTime time.Duration) {
	idle, stopped, idleTime, _, _ = p.sizeAt(now)
	return idle, stopped, idleTime
}

// IdleWanted is how many idle workers the pool wants now with inUse workers busy:
// the idle count, raised by the scale factor (ceil(factor × inUse), capped by the
// limit), and never more than max_instances leaves room for.
func (p Pool) IdleWanted(now time.Time, inUse int) int {
	idle, _, _, factor, limit := p.sizeAt(now)
	want := int(math.Ceil(factor * float64(inUse)))
	if limit > 0 {
		want = min(want, limit)
	}
	want = max(want, idle)
	if p.MaxInstances > 0 {
		want = min(want, max(p.MaxInstances-inUse, 0))
	}
	return want
}

func (p Pool) sizeAt(now time.Time) (idle, stopped int, idleTime time.Duration, factor float64, limit int) {
	idle, stopped, idleTime, factor, limit = p.IdleCount, p.StoppedCount, p.IdleTime.Duration, p.ScaleFactor, p.ScaleFactorLimit
	for _, e := range p.Schedule {
		if e.Matches(now) {
			idle, stopped, factor, limit = e.IdleCount, e.StoppedCount, e.ScaleFactor, e.ScaleFactorLimit
			if e.IdleTime.Duration > 0 {
				idleTime = e.IdleTime.Duration
			}
		}
	}
	return idle, stopped, idleTime, factor, limit
}

func (e PoolSchedule) validate(add func(error), i int, market string, maxInstances int) {
	field := fmt.Sprintf("pool.schedule[%d]", i)
	if len(e.Periods) == 0 {
		add(problem(field+".periods", "must list at least one cron expression"))
	}
	for _, p := range e.Periods {
		if _, err := cronParser.Parse(p); err != nil {
			add(problem(field+".periods", "%q is not a cron expression: %v", p, err))
		}
	}
	if _, err := time.LoadLocation(e.Timezone); err != nil {
		add(problem(field+".timezone", "%q is not a time zone (like Europe/Berlin or UTC): %v", e.Timezone, err))
	}
	if e.IdleCount < 0 || e.StoppedCount < 0 || e.ScaleFactor < 0 || e.ScaleFactorLimit < 0 {
		add(problem(field, "idle_count, stopped_count, scale_factor and scale_factor_limit must not be negative"))
	}
	if e.StoppedCount > 0 && market != MarketOnDemand {
		add(problem(field+".stopped_count", "needs instance.market = %q: EC2 cannot start a stopped spot instance again", MarketOnDemand))
	}
	if maxInstances > 0 && e.IdleCount+e.StoppedCount > maxInstances {
		add(problem(field, "idle_count + stopped_count (%d) is more than pool.max_instances (%d)", e.IdleCount+e.StoppedCount, maxInstances))
	}
}
