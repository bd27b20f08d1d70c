// Command bench measures ec2-executor against named peers on the local stack, in one
// run on one machine, and writes docs/performance.md from what it measured:
//
//   - job start (prepare to the script's first line): cold launch, an idle pooled
//     worker and a stopped one, the cold boots modelled with the boot simulator's
//     delay (EC2 phases measured for Amazon Linux 2023 on AWS);
//   - each run stage: the driver's `run` against `docker exec` on the worker's own
//     daemon (the floor), the Docker CLI over SSH (`DOCKER_HOST=ssh://`) and the
//     docker executor's `docker start -a -i`;
//   - output: 200 MB through each of those ways;
//   - manager cost: CPU and peak RSS of a job's driver processes and the pool's share;
//   - the EC2 API budget of a burst of jobs against EC2's documented token buckets,
//     cold and pooled, with docker+machine's documented pattern computed as the peer;
//   - a ramp of jobs served by a pool that follows demand (pool.scale_factor) and by
//     one of a fixed idle_count of the same average size: hit rate and idle cost;
//   - the manager's memory, open files and idle CPU per job while many jobs run.
//
// Run it with `make bench` (go run ./bench -binary bin/ec2-executor -out docs/performance.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/test/stack"
)

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/ec2-executor", "the driver binary")
	flag.StringVar(&o.out, "out", "docs/performance.md", "the report to write")
	flag.IntVar(&o.runs, "runs", 3, "jobs per job-start path")
	flag.IntVar(&o.stageRuns, "stage-runs", 15, "runs of the one-line stage, each way")
	flag.IntVar(&o.outputRuns, "output-runs", 3, "runs of the 200 MB output, each way")
	flag.DurationVar(&o.boot, "boot", 26*time.Second, "modelled cold boot: launch to sshd (AWS AL2023: ~5 s API and pending, 18 s to running, 3 s to sshd)")
	flag.DurationVar(&o.start, "start", 10*time.Second, "modelled start of a stopped worker: StartInstances to sshd (an assumption, not measured)")
	flag.IntVar(&o.burst, "burst", 200, "jobs in the EC2 API budget's burst")
	flag.StringVar(&o.only, "only", "", "measure one section alone and write only it: burst or running")
	flag.BoolVar(&o.allowBusy, "allow-busy", false, "write the report even when the machine was busy (load before the run, or steal time during it)")
	flag.IntVar(&o.ramp.jobs, "ramp", 100, "jobs in the ramp that compares pool.scale_factor with a fixed idle_count")
	flag.DurationVar(&o.ramp.over, "ramp-over", time.Minute, "how long the ramp's arrivals take")
	flag.DurationVar(&o.ramp.hold, "ramp-hold", 30*time.Second, "how long each of the ramp's jobs holds its worker")
	flag.IntVar(&o.running, "running", 50, "jobs held in their build script at once while the manager's memory is measured")
	flag.DurationVar(&o.runningFor, "running-for", 10*time.Minute, "how long each of those jobs waits in its script at most (they are released once measured)")
	flag.Parse()
	o.ramp.boot = o.boot
	if abs, err := filepath.Abs(o.binary); err == nil { // stage processes run in the job's directory
		o.binary = abs
	}
	// The burst's AWS clients live in this process: the stack's static test
	// credentials, and never the instance metadata service or real AWS.
	for _, kv := range stack.Env() {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v)
	}
	if err := bench(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
