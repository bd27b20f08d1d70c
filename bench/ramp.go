package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/pool"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/stack"
	"github.com/ec2-executor/ec2-executor/workers"
)

// rampShape is the ramp both pools serve: jobs arriving ever faster over a
// minute, each holding its worker a while.
type rampShape struct {
	jobs       int
	over, hold time.Duration
	boot       time.Duration
}

// rampRun is one pool's service of the ramp.
type rampRun struct {
	name        string
	jobs, hits  int
	failures    []string
	idleSeconds float64 // idle worker-seconds from the first arrival to the last job's end
	avgIdle     float64
	waits       series // from arrival to a worker the job reached
}

// rampArrivals spaces n arrivals over d with a linearly rising rate: arrival i
// comes at d·sqrt(i/n), so the last quarter of the minute brings almost half the
// jobs.
func rampArrivals(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(float64(d) * math.Sqrt(float64(i)/float64(n)))
	}
	return out
}

// runRamp serves the ramp from a pool with settings edited by edit, sampling its
// idle workers twice a second for what they cost.
func runRamp(ctx context.Context, s *stack.Stack, binary, name string, shape rampShape, edit func(*settings.Settings)) (rampRun, error) {
	r := rampRun{name: name, jobs: shape.jobs}
	dir := filepath.Join(s.Dir, "ramp-"+strings.ReplaceAll(name, " ", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	set, path, err := burstSettings(s, s.Endpoint(), filepath.Base(dir), func(c *settings.Settings) {
		c.StateDir = dir
		c.Pool.PollInterval = settings.Duration{Duration: time.Second}
		c.Pool.IdleTime = settings.Duration{Duration: 10 * time.Second}
		c.Pool.TerminateOnShutdown = true
		edit(c)
	})
	if err != nil {
		return r, err
	}
	s.Boot.SetBootDelay(shape.boot)
	defer s.Boot.SetBootDelay(0)
	p, err := startPool(binary, path)
	if err != nil {
		return r, err
	}
	defer p.stop()
	if err := waitReady(ctx, set.PoolSocket(), set.Pool.IdleCount, false, 2*shape.boot+time.Minute); err != nil {
		return r, err
	}
	stopSampling := r.sampleIdle(ctx, set.PoolSocket())
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, at := range rampArrivals(shape.jobs, shape.over) {
		time.Sleep(time.Until(start.Add(at)))
		wg.Go(func() {
			hit, took, err := rampJob(ctx, set, i, shape.hold)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.failures = append(r.failures, err.Error())
				return
			}
			if hit {
				r.hits++
			}
			r.waits.runs = append(r.waits.runs, took)
		})
	}
	wg.Wait()
	r.idleSeconds, r.avgIdle = stopSampling()
	return r, nil
}

// sampleIdle integrates the pool's idle workers over time until the returned
// function is called, which returns the idle worker-seconds and their average.
func (r *rampRun) sampleIdle(ctx context.Context, socket string) func() (float64, float64) {
	done := make(chan struct{})
	var total float64
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		last := time.Now()
		for tick := time.NewTicker(500 * time.Millisecond); ; {
			select {
			case <-done:
				tick.Stop()
				return
			case now := <-tick.C:
				if st, err := pool.QueryStatus(ctx, socket); err == nil {
					total += float64(st.Workers[workers.PoolIdle]) * now.Sub(last).Seconds()
				}
				last = now
			}
		}
	})
	return func() (float64, float64) {
		close(done)
		wg.Wait()
		return total, total / time.Since(start).Seconds()
	}
}

// rampJob gets a worker as a job's prepare does, holds it for hold and gives it
// back as cleanup does. A hit is a worker that was idle in the pool.
func rampJob(ctx context.Context, set settings.Settings, i int, hold time.Duration) (bool, time.Duration, error) {
	j, err := newBurstJob(ctx, set, 1000+i)
	if err != nil {
		return false, 0, err
	}
	start := time.Now()
	if err := j.getWorker(ctx); err != nil {
		_ = j.fleet.Release(context.WithoutCancel(ctx), j.job.Key, j.lease)
		return false, 0, err
	}
	took := time.Since(start)
	time.Sleep(hold)
	j.release(context.WithoutCancel(ctx))
	return strings.Contains(j.log.String(), "from the pool (ready for"), took, nil
}

// ramps serves the ramp with pool.scale_factor, then with a fixed idle_count of
// the average idle size the first kept.
func ramps(ctx context.Context, s *stack.Stack, binary string, shape rampShape) ([]rampRun, error) {
	scaled, err := runRamp(ctx, s, binary, "scale_factor 0.5, limit 20, idle_count 2", shape, func(c *settings.Settings) {
		c.Pool.IdleCount, c.Pool.ScaleFactor, c.Pool.ScaleFactorLimit = 2, 0.5, 20
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: ramp with scale_factor: %d of %d hits, %.0f idle worker-seconds\n", scaled.hits, scaled.jobs, scaled.idleSeconds)
	fixed := max(int(math.Round(scaled.avgIdle)), 1)
	flat, err := runRamp(ctx, s, binary, fmt.Sprintf("fixed idle_count %d (the same average size)", fixed), shape, func(c *settings.Settings) {
		c.Pool.IdleCount = fixed
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: ramp with idle_count %d: %d of %d hits, %.0f idle worker-seconds\n", fixed, flat.hits, flat.jobs, flat.idleSeconds)
	return []rampRun{scaled, flat}, nil
}

// rampSection reports the ramp.
func rampSection(rs []rampRun, shape rampShape) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs arrive over %s at a rising rate (arrival i at %s·√(i/%d)), each holding its worker %s; workers\n",
		shape.jobs, shape.over, shape.over, shape.jobs, shape.hold)
	fmt.Fprintf(&b, "boot in %s (modelled). A hit is a job that found an idle worker; the others waited for a worker the pool\n", shape.boot)
	b.WriteString("launched for them. Idle worker-seconds (what the pool's waiting costs) are sampled twice a second from the\n")
	b.WriteString("first arrival to the last job's end; the fixed pool is given the scaled pool's average idle size.\n\n")
	b.WriteString("| pool | hits | hit rate | median wait for a worker | idle worker-seconds | average idle |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		med := "—"
		if len(r.waits.runs) > 0 {
			med = round(r.waits.median())
		}
		fmt.Fprintf(&b, "| %s | %d of %d | %.0f%% | %s | %.0f | %.1f |\n", r.name, r.hits, r.jobs,
			100*float64(r.hits)/float64(max(r.jobs, 1)), med, r.idleSeconds, r.avgIdle)
	}
	for _, r := range rs {
		if len(r.failures) > 0 {
			fmt.Fprintf(&b, "\n%s: %d jobs got no worker; the first said: %s\n", r.name, len(r.failures), r.failures[0])
		}
	}
	return b.String()
}
