package settings

import (
	"fmt"
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
	idle, stopped, idleTime = p.IdleCount, p.StoppedCount, p.IdleTime.Duration
	for _, e := range p.Schedule {
		if e.Matches(now) {
			idle, stopped = e.IdleCount, e.StoppedCount
			if e.IdleTime.Duration > 0 {
				idleTime = e.IdleTime.Duration
			}
		}
	}
	return idle, stopped, idleTime
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
	if e.IdleCount < 0 || e.StoppedCount < 0 {
		add(problem(field, "idle_count and stopped_count must not be negative"))
	}
	if e.StoppedCount > 0 && market != MarketOnDemand {
		add(problem(field+".stopped_count", "needs instance.market = %q: EC2 cannot start a stopped spot instance again", MarketOnDemand))
	}
	if maxInstances > 0 && e.IdleCount+e.StoppedCount > maxInstances {
		add(problem(field, "idle_count + stopped_count (%d) is more than pool.max_instances (%d)", e.IdleCount+e.StoppedCount, maxInstances))
	}
}
