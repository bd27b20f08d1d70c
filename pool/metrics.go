package pool

import (
	"errors"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are what an operator graphs: workers by state, claims and their latency,
// the phases of a launch, EC2 calls and terminations by reason.
type metrics struct {
	reg     *prometheus.Registry
	workers *prometheus.GaugeVec
	// idleDesired is how many idle workers the pool wants now (pool.scale_factor).
	idleDesired prometheus.Gauge
	claims      *prometheus.CounterVec
	claimTime   prometheus.Histogram
	phases      *prometheus.HistogramVec
	ec2Calls    *prometheus.CounterVec
	terminated  *prometheus.CounterVec
	// prepullFailing is 1 for a pool.prepull_images image the pool gave up pulling.
	prepullFailing *prometheus.GaugeVec
	// jobCost and idleCost are what workers cost: the jobs', and the pool's idle time.
	jobCost, idleCost *prometheus.CounterVec
	// spotBreakers is 1 for each instance type and zone whose spot breaker is open.
	spotBreakers *prometheus.GaugeVec
	// idleByArch is the idle workers of each architecture, desired and actual.
	idleByArch *prometheus.GaugeVec
}

// Claim results, launch phases and termination reasons (label values).
const (
	ClaimHit      = "hit"
	ClaimStarted  = "started_stopped"
	ClaimCold     = "cold_overflow"
	ClaimLaunched = "launched_for_job"
	ClaimCap      = "cap_reached"
	ClaimError    = "error"
	ClaimRefused  = "refused_peer"
	PhaseRun      = "run_instances"
	PhaseRunning  = "running"
	PhaseSSH      = "ssh_and_docker"
	PhaseImages   = "images_pulled"
	ReasonIdle    = "idle_time"
	ReasonJobDone = "job_done"
	ReasonUnknown = "unverified"
	ReasonGone    = "interrupted_or_gone"
	ReasonBoot    = "failed_to_boot"
	ReasonStop    = "shutdown"
	ReasonWipe    = "wipe_failed"
	ReasonSpot    = "spot_notice"
)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.workers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ec2x_pool_workers",
		Help: "Pool workers by state (booting, idle, stopped, starting, claimed)."}, []string{"state"})
	m.idleDesired = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ec2x_pool_idle_desired",
		Help: "Idle workers the pool wants now: pool.idle_count (or the schedule's), raised by pool.scale_factor for the workers in use; ec2x_pool_workers{state=\"idle\"} is how many it has."})
	m.claims = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ec2x_pool_claims_total",
		Help: "Claims by result: hit (an idle pool worker), started_stopped (a stopped worker started for it), launched_for_job (the pool launched a worker for it, batched with the claims that came with it), cold_overflow (the job launched its own: the reason is in its log), cap_reached, error, refused_peer."}, []string{"result"})
	m.claimTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ec2x_pool_claim_seconds",
		Help: "Time to answer a claim, waiting at the cap included.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)})
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ec2x_pool_launch_phase_seconds",
		Help:    "Seconds from a pool worker's launch to each phase: run_instances answered, running, ssh_and_docker, images_pulled.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"phase"})
	m.ec2Calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ec2x_ec2_calls_total",
		Help: "EC2 API calls the pool made, by action and error code (empty for success)."}, []string{"action", "code"})
	m.terminated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ec2x_pool_terminated_total",
		Help: "Pool workers ended, by reason: idle_time, job_done, unverified, interrupted_or_gone, failed_to_boot, shutdown, wipe_failed, spot_notice (EC2 announced an idle spot worker's reclaim or recommended its rebalance)."}, []string{"reason"})
	m.prepullFailing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ec2x_pool_prepull_failing",
		Help: "1 for a pool.prepull_images image whose last pulls all failed: the pool stopped pulling it until it restarts (the reason is in its log)."}, []string{"image"})
	m.jobCost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ec2_executor_job_cost_dollars_total",
		Help: "What this manager's jobs' workers cost them (USD), from the job's start to its cleanup, by CI_PROJECT_PATH and instance type; jobs whose price is unknown are not counted (the cost record and `ec2-executor costs` list them)."},
		[]string{"project", "instance_type"})
	m.idleCost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ec2_executor_pool_idle_cost_dollars_total",
		Help: "What the pool's idle workers cost while they waited for a job (USD), by instance type."}, []string{"instance_type"})
	m.spotBreakers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ec2x_spot_breaker_open",
		Help: "1 for each instance type and zone whose spot breaker is open: instance.spot_interruptions_limit reclaims within instance.spot_interruptions_window made launches there go on-demand for instance.spot_cooldown."},
		[]string{"instance_type", "zone"})
	m.idleByArch = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ec2x_pool_idle_by_arch",
		Help: "Idle workers by architecture: desired (pool.idle_count and its scale factor and schedules for instance.types' architecture, [pool.<arch>] for the other) and actual."},
		[]string{"arch", "count"})
	m.reg.MustRegister(m.workers, m.idleDesired, m.claims, m.claimTime, m.phases, m.ec2Calls, m.terminated, m.prepullFailing, m.jobCost, m.idleCost, m.spotBreakers, m.idleByArch)
	return m
}

// call counts one EC2 call by its action and error code.
func (m *metrics) call(action string, err error) {
	code := ""
	if err != nil {
		code = "other"
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			code = apiErr.ErrorCode()
		}
	}
	m.ec2Calls.WithLabelValues(action, code).Inc()
}
