// Command bench measures ec2-executor against named peers on the local stack, in one
// run on one machine, and writes docs/performance.md from what it measured.
//
// Today it measures job start: the time from the start of prepare to the first line
// of the job's script, for a cold launch, a worker from the warm pool and a stopped
// worker the pool starts for the job. The
// stack's moto reports instances running at once, so cold boots are modelled with the
// boot simulator's delay (EC2 phases measured for Amazon Linux 2023 on AWS); the
// pooled figure involves no boot on the job's path and is not modelled.
//
//	go run ./bench -binary bin/ec2-executor -out docs/performance.md   (make bench)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	binary := flag.String("binary", "bin/ec2-executor", "the driver binary")
	out := flag.String("out", "docs/performance.md", "the report to write")
	runs := flag.Int("runs", 3, "jobs per path")
	boot := flag.Duration("boot", 26*time.Second, "modelled cold boot: launch to sshd (AWS AL2023: ~5 s API and pending, 18 s to running, 3 s to sshd)")
	start := flag.Duration("start", 10*time.Second, "modelled start of a stopped worker: StartInstances to sshd (an assumption, not measured)")
	flag.Parse()
	if err := bench(context.Background(), *binary, *out, *runs, *boot, *start); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
