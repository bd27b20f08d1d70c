package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/stack"
	"github.com/ec2-executor/ec2-executor/workers"
)

// prepareAttempts is how often gitlab-runner tries prepare before it fails the job.
const prepareAttempts = 3

// burst is one way of serving a burst of jobs that arrive at once, against EC2's
// documented token buckets.
type burst struct {
	name       string
	jobs       int
	got        int           // jobs that got a worker
	lastWorker time.Duration // from the burst to the last job with a worker
	median     time.Duration
	calls      map[string]int // EC2 calls by action: the burst and the cleanups
	throttled  map[string]int
	fill       time.Duration // a pool's: from its start to n idle workers
	fillCalls  map[string]int
	failures   []string
	fromPool   int      // jobs whose worker came from the pool
	coldWhy    []string // why jobs that could have had a pool worker launched cold
	brokered   bool     // the pool had no idle worker and launched for the jobs
	start      time.Time
	launched   time.Duration // from the burst to its last RunInstances call
}

// burstJob is one job's side of the burst: the worker-getting part of prepare (Get,
// then Reach over SSH and Docker), retried as gitlab-runner retries prepare, and
// later cleanup's Release. Each job has AWS clients of its own, as each stage process
// has.
type burstJob struct {
	fleet *workers.Fleet
	job   workers.Job
	lease workers.Lease
	log   strings.Builder // what the job log would say
}

func newBurstJob(ctx context.Context, set settings.Settings, i int) (*burstJob, error) {
	cfg, err := provision.LoadConfig(ctx, set.AWS.Region, set.AWS.Endpoint, hclog.NewNullLogger())
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d-burst", 30000+i)
	b := &burstJob{job: workers.Job{Key: key, ID: fmt.Sprint(30000 + i), ProjectID: "7", PipelineID: "900", RunnerID: "1"}}
	log := hclog.New(&hclog.LoggerOptions{Output: &b.log, Level: hclog.Info, DisableTime: true})
	b.fleet = workers.New(set, workers.Clients{EC2: ec2.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}, log, time.Now)
	return b, nil
}

// getWorker returns when the job's worker answers over SSH and Docker.
func (b *burstJob) getWorker(ctx context.Context) error {
	var err error
	for range prepareAttempts {
		if b.lease, err = b.fleet.Get(ctx, b.job, b.fleet.Settings().Instance, func(workers.Lease) error { return nil }); err != nil {
			_ = b.fleet.Release(ctx, b.job.Key, b.lease)
			continue
		}
		w, rerr := b.fleet.Reach(ctx, b.lease)
		if rerr == nil {
			return w.Close()
		}
		err = rerr
		_ = b.fleet.Release(ctx, b.job.Key, b.lease)
	}
	return err
}

// runBurst starts every job at once and waits for each to have a worker, then
// releases them all at once, as their cleanups would.
func runBurst(ctx context.Context, set settings.Settings, n int, b *burst) error {
	jobs := make([]*burstJob, n)
	for i := range jobs {
		var err error
		if jobs[i], err = newBurstJob(ctx, set, i); err != nil {
			return err
		}
	}
	times := make([]time.Duration, n)
	errs := make([]error, n)
	start := time.Now()
	b.start = start
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			errs[i] = j.getWorker(ctx)
			times[i] = time.Since(start)
		})
	}
	wg.Wait()
	var ok []time.Duration
	for i, err := range errs {
		if err != nil {
			b.failures = append(b.failures, err.Error())
			continue
		}
		ok = append(ok, times[i])
	}
	b.jobs, b.got = n, len(ok)
	for i, j := range jobs {
		if errs[i] == nil && j.lease.Source == workers.SourcePool {
			b.fromPool++
		} else if line, ok := coldReason(j.log.String()); ok {
			b.coldWhy = append(b.coldWhy, line)
		}
	}
	if len(ok) > 0 {
		b.lastWorker, b.median = slices.Max(ok), series{runs: ok}.median()
	}
	for _, j := range jobs {
		wg.Go(func() { j.release(context.WithoutCancel(ctx)) })
	}
	wg.Wait()
	return nil
}

// release ends the job's hold on its worker as cleanup does: back to the pool,
// which ends it with the others, else terminated by the job.
func (b *burstJob) release(ctx context.Context) {
	if !b.fleet.GiveBack(ctx, b.job, b.lease, false) {
		_ = b.fleet.Release(ctx, b.job.Key, b.lease)
	}
}

// coldBurst serves the burst with a fresh launch per job.
func coldBurst(ctx context.Context, s *stack.Stack, n int, boot time.Duration) (burst, error) {
	b := burst{name: "ec2-executor, cold launch per job (measured)"}
	proxy, limits := throttledProxy()
	defer proxy.Close()
	set, _, err := burstSettings(s, proxy.URL, "burst-cold", nil)
	if err != nil {
		return b, err
	}
	s.Boot.SetBootDelay(boot)
	defer s.Boot.SetBootDelay(0)
	if err := runBurst(ctx, set, n, &b); err != nil {
		return b, err
	}
	b.calls, b.throttled = proxy.Counts(), limits.Throttled()
	return b, nil
}

// pooledBurst serves the burst from a pool that was filled first.
func pooledBurst(ctx context.Context, s *stack.Stack, binary string, n int, boot time.Duration) (burst, error) {
	b := burst{name: "ec2-executor with a pool of as many idle workers (measured)"}
	proxy, limits := throttledProxy()
	defer proxy.Close()
	defer s.Boot.SetBootDelay(0)
	set, p, err := burstPool(s, binary, proxy.URL, "burst-pool", n, boot)
	if err != nil {
		return b, err
	}
	start := time.Now()
	if err := waitReady(ctx, set.PoolSocket(), n, false, 5*time.Minute); err != nil {
		p.stop()
		b.jobs, b.failures = n, []string{"the pool did not fill: " + err.Error()}
		b.calls, b.throttled = proxy.Counts(), limits.Throttled()
		return b, nil
	}
	b.fill, b.fillCalls = time.Since(start), proxy.Counts()
	err = runBurst(ctx, set, n, &b)
	p.stop()
	b.calls, b.throttled = minus(proxy.Counts(), b.fillCalls), limits.Throttled()
	return b, err
}

// brokeredBurst serves the burst from a running pool with no idle worker: each
// job's claim asks it to launch one, and it batches and paces the launches.
func brokeredBurst(ctx context.Context, s *stack.Stack, binary string, n int, boot time.Duration) (burst, error) {
	b := burst{name: "ec2-executor with a pool of no idle workers, launching for the jobs (measured)", brokered: true}
	proxy, limits := throttledProxy()
	defer proxy.Close()
	defer s.Boot.SetBootDelay(0)
	set, p, err := burstPool(s, binary, proxy.URL, "burst-brokered", 0, boot)
	if err != nil {
		return b, err
	}
	defer p.stop()
	if err := waitReady(ctx, set.PoolSocket(), 0, false, time.Minute); err != nil {
		return b, err
	}
	err = runBurst(ctx, set, n, &b)
	b.calls, b.throttled = proxy.Counts(), limits.Throttled()
	b.launched = proxy.LastCall("RunInstances").Sub(b.start)
	return b, err
}

// burstPool starts a pool of idle workers booting in boot (reset it after), its
// settings in a directory of their own and its EC2 calls through endpoint.
func burstPool(s *stack.Stack, binary, endpoint, name string, idle int, boot time.Duration) (settings.Settings, *poolProcess, error) {
	dir := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return settings.Settings{}, nil, err
	}
	set, path, err := burstSettings(s, endpoint, name, func(c *settings.Settings) {
		c.StateDir = dir
		c.Pool.IdleCount = idle
		c.Pool.PollInterval = settings.Duration{Duration: time.Second}
	})
	if err != nil {
		return set, nil, err
	}
	s.Boot.SetBootDelay(boot)
	p, err := startPool(binary, path)
	return set, p, err
}

// coldReason is the job log's line saying why a job that asked a pool launched
// cold.
func coldReason(log string) (string, bool) {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "The warm pool did not answer") || strings.Contains(line, "has no worker for this job") {
			return strings.TrimSpace(line), true
		}
	}
	return "", false
}

func throttledProxy() (*stack.Proxy, *stack.EC2Limits) {
	proxy, limits := stack.NewProxy(), stack.NewEC2Limits()
	proxy.SetFault(limits.Fault)
	return proxy, limits
}

func burstSettings(s *stack.Stack, endpoint, name string, edit func(*settings.Settings)) (settings.Settings, string, error) {
	path, err := s.SettingsFor(name+".toml", endpoint, func(c *settings.Settings) {
		c.Reap.FromCleanup = false
		c.Pool.TerminateOnShutdown = false
		// The product's default, not the suite's minute: in a burst the stack boots
		// workers in turn, as EC2 is slower to boot many at once.
		c.SSH.ConnectTimeout = settings.Default().SSH.ConnectTimeout
		if edit != nil {
			edit(c)
		}
	})
	if err != nil {
		return settings.Settings{}, path, err
	}
	set, err := settings.Load(path)
	return set, path, err
}

func minus(a, b map[string]int) map[string]int {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] -= v
		if out[k] == 0 {
			delete(out, k)
		}
	}
	return out
}

// perJob formats calls by action, divided by jobs, in a stable order.
func perJob(calls map[string]int, jobs int) string {
	keys := slices.Sorted(maps.Keys(calls))
	var out []string
	for _, k := range keys {
		if calls[k] > 0 {
			out = append(out, fmt.Sprintf("%s %.2f", k, float64(calls[k])/float64(jobs)))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func total(calls map[string]int) int {
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

// burstSection reports the bursts against EC2's buckets, with docker+machine's
// computed pattern as the peer.
func burstSection(bs []burst, n int, boot time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs arrive at once. Every EC2 call goes through the stack's proxy, which enforces EC2's documented token\n", n)
	b.WriteString("buckets (`test/stack/throttle.go`: RunInstances 5 requests refilled at 2 per second plus 1,000 instances at 2\n")
	b.WriteString("per second; filtered Describe* 100 at 20; unfiltered 50 at 10; other mutating actions such as CreateTags and\n")
	b.WriteString("TerminateInstances 50 at 5, TerminateInstances also 1,000 instances at 20) and answers `RequestLimitExceeded`\n")
	fmt.Fprintf(&b, "when a bucket is empty. Workers boot in %s (modelled, as above). \"Has a worker\" means the job's prepare reached\n", boot)
	b.WriteString("the worker over SSH and Docker; each job uses AWS clients of its own, as each stage process does, and gets\n")
	b.WriteString("gitlab-runner's 3 prepare attempts, with `ssh.connect_timeout` at its default (5m). Calls include each job's\n")
	b.WriteString("cleanup (release and terminate).\n\n")
	b.WriteString("| way | jobs with a worker | last job has a worker after | median | EC2 calls per job | calls in all | throttled |\n|---|---|---|---|---|---|---|\n")
	for _, x := range bs {
		fmt.Fprintf(&b, "| %s | %d of %d | %s | %s | %s | %d | %d (%s) |\n", x.name, x.got, x.jobs, round(x.lastWorker), round(x.median),
			perJob(x.calls, x.jobs), total(x.calls), total(x.throttled), perJob(x.throttled, 1))
	}
	for _, x := range bs {
		if x.brokered {
			fmt.Fprintf(&b, "\nWith the pool running and no idle worker (`idle_count = 0`), %d of the %d jobs had a worker the pool launched for\n", x.fromPool, x.jobs)
			b.WriteString("them, in RunInstances calls shared by the claims that arrived together and paced by its token buckets")
			if len(x.coldWhy) > 0 {
				fmt.Fprintf(&b, "; %d launched their own, the first saying: %s", len(x.coldWhy), x.coldWhy[0])
			}
			lc := x.calls["RunInstances"] + x.calls["DescribeInstances"] + x.calls["TerminateInstances"]
			fmt.Fprintf(&b, ". Launch, describe and terminate calls: %.2f per job; throttled: %.1f%% of all calls.\n",
				float64(lc)/float64(max(x.jobs, 1)), 100*float64(total(x.throttled))/float64(max(total(x.calls), 1)))
			fmt.Fprintf(&b, "Its last RunInstances call was made %s after the burst; the rest of the wait is the workers' boots (%s\n", round(x.launched), boot)
			b.WriteString("modelled, on the stack's simulator, which boots at most 16 workers at once on this machine: the pool's fill of as\n")
			b.WriteString("many workers below shows the same ceiling) and the pool's check of each.\n")
		}
		if x.fill > 0 {
			fmt.Fprintf(&b, "\nThe pool was filled before the burst: %d idle workers in %s with %d EC2 calls (%s), paced by its own\n", x.jobs, round(x.fill), total(x.fillCalls), perJob(x.fillCalls, 1))
			b.WriteString("token buckets below EC2's, so that filling it left the account's buckets for everything else.\n")
			fmt.Fprintf(&b, "%d of the %d jobs had a worker from the pool", x.fromPool, x.jobs)
			if len(x.coldWhy) > 0 {
				fmt.Fprintf(&b, "; %d launched cold, the first saying: %s", len(x.coldWhy), x.coldWhy[0])
			}
			b.WriteString(".\n")
		}
		if len(x.failures) > 0 {
			fmt.Fprintf(&b, "\n%s: %d jobs got no worker; the first said: %s\n", x.name, len(x.failures), x.failures[0])
		}
	}
	return b.String()
}
