package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
)

// machine maps [runners.machine]'s own keys (besides MachineOptions) onto the pool.
func (m *migration) machine(s *settings.Settings, v runnerView) {
	for _, key := range slices.Sorted(maps.Keys(v.machine)) {
		val := v.machine[key]
		switch key {
		case "MachineDriver", "MachineOptions":
		case "IdleCount":
			n, _ := integer(val)
			if factor, _ := decimal(v.machine["IdleScaleFactor"]); factor > 0 {
				s.Pool.ScaleFactorLimit = n
				m.report.add(v.name, key, Changed, fmt.Sprintf("pool.scale_factor_limit = %d: with IdleScaleFactor, docker+machine's IdleCount is the most idle machines", n))
				continue
			}
			s.Pool.IdleCount = n
			m.report.add(v.name, key, Changed, "pool.idle_count: run `ec2-executor pool` as a service (docs/pool.md) to keep them")
		case "IdleScaleFactor":
			f, ok := decimal(val)
			if !ok || f < 0 {
				m.report.add(v.name, key, NotSupported, fmt.Sprintf("%v is not a scale factor: nothing was written for it", val))
				continue
			}
			s.Pool.ScaleFactor = f
			m.report.add(v.name, key, Changed, fmt.Sprintf("pool.scale_factor = %g: idle workers follow the workers in use, as docker+machine's max(IdleCountMin, min(IdleCount, factor × in use)); run `ec2-executor pool` (docs/pool.md)", f))
		case "IdleCountMin":
			n, _ := integer(val)
			s.Pool.IdleCount = n
			m.report.add(v.name, key, Mapped, fmt.Sprintf("pool.idle_count = %d, the fewest idle workers with pool.scale_factor", n))
		case "IdleTime":
			n, _ := integer(val)
			s.Pool.IdleTime = settings.Duration{Duration: time.Duration(n) * time.Second}
			m.report.add(v.name, key, Mapped, "pool.idle_time")
		case "MaxBuilds":
			n, _ := integer(val)
			s.Pool.MaxBuilds = max(n, 1)
			if s.Pool.MaxBuilds > 1 && (s.Docker.Privileged || s.Docker.ServicePrivileged()) {
				s.Pool.MaxBuilds = 1
				m.report.add(v.name, key, Changed, fmt.Sprintf("pool.max_builds = 1, not %d: the runner's jobs are privileged, and a privileged job can change its worker for the next one (docs/pool.md); pool.reuse_privileged = true with max_builds reuses them anyway", n))
				continue
			}
			m.report.add(v.name, key, Changed, "pool.max_builds: a worker is wiped between jobs and reused within one project (pool.reuse_scope = \"runner\" shares it across projects, as docker+machine did)")
		case "MachineName":
			m.report.add(v.name, key, Changed, "workers are named by their job (the Name tag) and tagged with it")
		case "autoscaling":
			m.autoscaling(s, v)
		case "MaxGrowthRate":
			m.report.add(v.name, key, Changed, fmt.Sprintf("no counterpart for machines created at once: pool.launches_per_second (%g) paces the pool's launches below EC2's limits instead", s.Pool.LaunchesPerSecond))
		case "OffPeakPeriods", "OffPeakTimezone", "OffPeakIdleCount", "OffPeakIdleTime":
			if key == "OffPeakPeriods" {
				m.offPeak(s, v)
			}
		default:
			m.report.add(v.name, key, NotSupported, "ec2-executor has no counterpart: see docs/migrating.md")
		}
	}
	if limit, ok := integer(v.raw["limit"]); ok && limit > 0 {
		s.Pool.MaxInstances = limit + max(s.Pool.IdleCount, s.Pool.ScaleFactorLimit, maxScheduledIdle(s))
		m.report.add(v.name, "limit", Changed, "kept in the runner config, and pool.max_instances = limit plus the most idle workers")
	}
}

// autoscaling maps [[runners.machine.autoscaling]] periods onto [[pool.schedule]].
func (m *migration) autoscaling(s *settings.Settings, v runnerView) {
	periods, _ := v.machine["autoscaling"].([]map[string]any)
	for _, p := range periods {
		e := settings.PoolSchedule{Timezone: str(p["Timezone"])}
		if e.Timezone == "" {
			e.Timezone = "UTC"
		}
		e.IdleCount, _ = integer(p["IdleCount"])
		if n, ok := integer(p["IdleTime"]); ok {
			e.IdleTime = settings.Duration{Duration: time.Duration(n) * time.Second}
		}
		for _, period := range stringList(p["Periods"]) {
			e.Periods = append(e.Periods, cron6(period))
		}
		s.Pool.Schedule = append(s.Pool.Schedule, e)
	}
	m.report.add(v.name, "autoscaling", Changed, fmt.Sprintf("%d [[pool.schedule]] entries%s", len(periods), m.yearNote(periods)))
}

// offPeak maps the older OffPeak* keys onto one [[pool.schedule]] entry, which is
// what they were: another idle count in some periods.
func (m *migration) offPeak(s *settings.Settings, v runnerView) {
	e := settings.PoolSchedule{Timezone: str(v.machine["OffPeakTimezone"])}
	if e.Timezone == "" {
		e.Timezone = "UTC"
	}
	e.IdleCount, _ = integer(v.machine["OffPeakIdleCount"])
	if n, ok := integer(v.machine["OffPeakIdleTime"]); ok {
		e.IdleTime = settings.Duration{Duration: time.Duration(n) * time.Second}
	}
	for _, period := range stringList(v.machine["OffPeakPeriods"]) {
		e.Periods = append(e.Periods, cron6(period))
	}
	s.Pool.Schedule = append(s.Pool.Schedule, e)
	m.report.add(v.name, "OffPeakPeriods, OffPeakIdleCount, OffPeakIdleTime, OffPeakTimezone", Changed,
		fmt.Sprintf("one [[pool.schedule]] entry: idle_count %d in those periods%s", e.IdleCount, m.yearNote([]map[string]any{{"Periods": v.machine["OffPeakPeriods"]}})))
}

// yearNote says which periods named a year, which the schedule cannot hold.
func (m *migration) yearNote(periods []map[string]any) string {
	var years []string
	for _, p := range periods {
		for _, period := range stringList(p["Periods"]) {
			if f := strings.Fields(period); len(f) == 7 && f[6] != "*" {
				years = append(years, fmt.Sprintf("%q", period))
			}
		}
	}
	if len(years) == 0 {
		return ""
	}
	return "; the year field of " + strings.Join(years, ", ") + " was dropped: those periods now apply every year"
}

// cron6 drops the year field of docker+machine's seven-field periods (seconds
// minutes hours day-of-month month day-of-week year), which [[pool.schedule]]
// cannot hold; yearNote reports a year that was not "*".
func cron6(p string) string {
	f := strings.Fields(p)
	if len(f) == 7 {
		return strings.Join(f[:6], " ")
	}
	return p
}

// decimal reads a TOML number, integer or float.
func decimal(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func maxScheduledIdle(s *settings.Settings) int {
	n := 0
	for _, e := range s.Pool.Schedule {
		n = max(n, e.IdleCount)
	}
	return n
}
