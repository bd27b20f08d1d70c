package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// series is one path's measurements.
type series struct {
	name, note string
	runs       []time.Duration
}

func (s series) median() time.Duration {
	r := slices.Clone(s.runs)
	slices.Sort(r)
	return r[len(r)/2]
}

func (s series) min() time.Duration { return slices.Min(s.runs) }
func (s series) max() time.Duration { return slices.Max(s.runs) }

// options are the command line's.
type options struct {
	binary, out     string
	runs, stageRuns int
	outputRuns      int
	boot, start     time.Duration
	burst           int
	only            string // one section measured and written alone: burst or running
	ramp            rampShape
	allowBusy       bool
	running         int           // jobs held in their script at once for the memory section
	runningFor      time.Duration // how long each of them waits there
}

func bench(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "ec2-executor-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	s, err := stack.Up(ctx, filepath.Join(dir, "stack"))
	if err != nil {
		return err
	}
	defer s.Down()
	r := &report{machine: watchMachine()}
	switch o.only {
	case "burst":
		if err := r.bursts(ctx, s, o); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(burstSection(r.burst, o.burst, o.boot)), 0o644)
	case "running":
		if r.running, err = runningJobs(ctx, s, o, filepath.Join(dir, "running")); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(runningSection(r.running)), 0o644)
	case "":
	default:
		return fmt.Errorf("-only %q: want burst or running", o.only)
	}
	if err := r.jobStarts(ctx, s, o, dir); err != nil {
		return err
	}
	if err := r.stagesAndOutput(ctx, s, o); err != nil {
		return err
	}
	if err := r.bursts(ctx, s, o); err != nil {
		return err
	}
	if r.ramp, err = ramps(ctx, s, o.binary, o.ramp); err != nil {
		return err
	}
	if r.running, err = runningJobs(ctx, s, o, filepath.Join(dir, "running")); err != nil {
		return err
	}
	return r.write(o)
}

// report gathers each section's measurements as the benchmark goes.
type report struct {
	cold, pooled, stopped series
	coldJob, pooledJob    runnersim.Result
	poolCPU               time.Duration // the pool process's CPU per pooled job
	poolRSS               int64
	stages, output        []wayResult
	burst                 []burst
	ramp                  []rampRun
	running               running
	machine               *quiet
	holderCPU             time.Duration // a job's holder, for its own stages
}

// bursts measures the cold, brokered and pooled bursts and computes docker+machine's.
func (r *report) bursts(ctx context.Context, s *stack.Stack, o options) error {
	cold, err := coldBurst(ctx, s, o.burst, o.boot)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: cold burst: %d of %d in %s\n", cold.got, cold.jobs, round(cold.lastWorker))
	brokered, err := brokeredBurst(ctx, s, o.binary, o.burst, o.boot)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: brokered burst: %d of %d in %s\n", brokered.got, brokered.jobs, round(brokered.lastWorker))
	pooled, err := pooledBurst(ctx, s, o.binary, o.burst, o.boot)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: pooled burst: %d of %d in %s\n", pooled.got, pooled.jobs, round(pooled.lastWorker))
	r.burst = []burst{dockerMachineBurst(o.burst, o.boot), cold, brokered, pooled}
	return nil
}

func (r *report) jobStarts(ctx context.Context, s *stack.Stack, o options, dir string) error {
	s.Boot.SetBootDelay(o.boot)
	s.Boot.SetStartDelay(o.start)
	defer s.Boot.SetBootDelay(0)
	r.cold = series{name: "cold launch (no pool)", note: fmt.Sprintf("modelled: sshd answers %s after launch", o.boot)}
	for i := range o.runs {
		d, res, err := jobStart(ctx, o.binary, s.ReadySettingsFile, 9000+i)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: cold job %d: %s\n", i+1, d.Round(time.Millisecond))
		r.cold.runs, r.coldJob = append(r.cold.runs, d), res
	}
	var err error
	if r.pooled, err = r.pooledStarts(ctx, s, o, filepath.Join(dir, "pool"), false); err != nil {
		return err
	}
	if r.stopped, err = r.pooledStarts(ctx, s, o, filepath.Join(dir, "stopped"), true); err != nil {
		return err
	}
	r.stopped.note = fmt.Sprintf("modelled: sshd answers %s after StartInstances", o.start)
	return nil
}

// pooledStarts runs jobs on a pool of as many idle (or stopped) workers as jobs.
func (r *report) pooledStarts(ctx context.Context, s *stack.Stack, o options, dir string, stopped bool) (series, error) {
	out := series{name: "idle worker from the warm pool", note: "not modelled: no boot on the job's path"}
	if stopped {
		out.name = "stopped worker the pool starts"
	}
	cfg, p, err := readyPool(ctx, s, o.binary, dir, o.runs, stopped, 2*o.boot+2*time.Minute)
	if err != nil {
		return out, err
	}
	defer p.stop()
	before, _ := p.usage()
	for i := range o.runs {
		d, res, err := jobStart(ctx, o.binary, cfg, 9100+i)
		if err != nil {
			return out, err
		}
		fmt.Fprintf(os.Stderr, "bench: %s, job %d: %s\n", out.name, i+1, d.Round(time.Millisecond))
		out.runs = append(out.runs, d)
		if !stopped {
			r.pooledJob = res
		}
	}
	if !stopped {
		after, rss := p.usage()
		r.poolCPU, r.poolRSS = (after-before)/time.Duration(o.runs), rss
	}
	return out, nil
}

// stagesAndOutput holds one job before its cleanup and runs stages against it the
// driver's way and its peers'.
func (r *report) stagesAndOutput(ctx context.Context, s *stack.Stack, o options) error {
	_, err := holdJob(ctx, s, o.binary, s.ReadySettingsFile, 9200, func(j *liveJob) error {
		r.holderCPU = j.holderCPU
		var err error
		if r.stages, err = measureWays(j, stageScript, "stage-ok", o.stageRuns); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: stages measured\n")
		r.output, err = measureWays(j, outputScript, strings.Repeat("x", 99), o.outputRuns)
		return err
	})
	return err
}

func (r *report) String(o options) string {
	var b strings.Builder
	b.WriteString("# Performance\n\n")
	b.WriteString("Written by `make bench` (`go run ./bench`) from what it measured in one run on one machine; no figure is\n")
	b.WriteString("typed by hand. Reproduce with `make bench` after the README's set-up.\n\n")
	fmt.Fprintf(&b, "- Run: %s, %s, %d CPUs (%s), %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS+"/"+runtime.GOARCH,
		runtime.NumCPU(), cpuModel(), runtime.Version())
	b.WriteString("- Stack: moto_server behind the stack's proxy, real sshd per worker, Debian's dockerd, the runner simulator.\n")
	fmt.Fprintf(&b, "- Machine: %s; steal time below %.0f%% throughout (a busier run is not written here).\n\n", r.machine.summary(), 100*busySteal)
	r.jobStartSection(&b, o)
	b.WriteString("\n## Each run stage: the driver's `run` against the ways a user could do the same\n\n")
	b.WriteString(stageTable(r.stages, o.stageRuns))
	b.WriteString("\n## Output: a job printing 200 MB\n\n")
	b.WriteString(outputTable(r.output, o.outputRuns))
	b.WriteString("\n## Manager cost of one job\n\n")
	b.WriteString(r.costSection())
	b.WriteString("\n## EC2 API budget at scale\n\n")
	b.WriteString(burstSection(r.burst, o.burst, o.boot))
	b.WriteString("\n## Idle workers that follow demand\n\n")
	b.WriteString(rampSection(r.ramp, o.ramp))
	b.WriteString("\n")
	b.WriteString(runningSection(r.running))
	return b.String()
}

func (r *report) jobStartSection(b *strings.Builder, o options) {
	b.WriteString("## Job start: from the start of `prepare` to the first line of the job's script\n\n")
	fmt.Fprintf(b, "%d jobs per path, one after another. The cold figure is modelled: moto reports an instance running at\n", o.runs)
	fmt.Fprintf(b, "once, so the boot simulator starts the worker's sshd %s after launch, the time Amazon Linux 2023 takes on\n", o.boot)
	b.WriteString("AWS from RunInstances to SSH (about 5 s for the call and pending, 18 s to running, 3 s to sshd). A stock\n")
	b.WriteString("AMI that installs Docker at boot adds a minute or more, not modelled. The pooled figure involves no boot on\n")
	b.WriteString("the job's path and is measured as it is. The stopped figure is modelled too: moto starts a stopped\n")
	fmt.Fprintf(b, "instance at once, so the boot simulator starts its sshd %s after StartInstances (an assumption for an\n", o.start)
	b.WriteString("EBS-backed instance, not a measurement; RunsOn reports a stopped instance taking a job in under 15 s).\n\n")
	b.WriteString("| path | median | fastest | slowest | ratio to cold | note |\n|---|---|---|---|---|---|\n")
	for _, s := range []series{r.cold, r.pooled, r.stopped} {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %.3f | %s |\n", s.name, round(s.median()), round(s.min()), round(s.max()),
			float64(s.median())/float64(r.cold.median()), s.note)
	}
	fmt.Fprintf(b, "\nA job on an idle pooled worker starts %.1f× faster than a cold one here, and one on a stopped worker %.1f× faster.\n",
		float64(r.cold.median())/float64(r.pooled.median()), float64(r.cold.median())/float64(r.stopped.median()))
	if parts := beforeScript(r.pooledJob); parts != "" {
		fmt.Fprintf(b, "Where the last pooled job's start went, by the driver call gitlab-runner made: %s.\n", parts)
	}
}

// beforeScript lists how long each driver call before the job's script took.
func beforeScript(res runnersim.Result) string {
	var parts []string
	for _, c := range res.Calls {
		if c.Stage == "build_script" || c.Stage == "step_script" {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s", c.Stage, round(c.Duration)))
	}
	return strings.Join(parts, ", ")
}

func round(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// jobCost sums a job's driver processes: CPU time and the largest peak RSS.
func jobCost(res runnersim.Result) (cpu time.Duration, rss int64, calls int) {
	for _, c := range res.Calls {
		cpu += c.CPU
		rss = max(rss, c.MaxRSS)
	}
	return cpu, rss, len(res.Calls)
}

func (r *report) costSection() string {
	var b strings.Builder
	cold, coldRSS, coldCalls := jobCost(r.coldJob)
	pooled, pooledRSS, pooledCalls := jobCost(r.pooledJob)
	cold += r.holderCPU
	pooled += r.holderCPU
	b.WriteString("CPU time (user + system) of every driver process gitlab-runner starts for one trivial job, summed, plus\n")
	fmt.Fprintf(&b, "the job's holder (%s, measured on a job before its cleanup), and the largest peak RSS among them (sampled\n", ms(r.holderCPU))
	b.WriteString("from /proc); for a pooled job the pool process's CPU while it served the benchmark's jobs, divided by\n")
	b.WriteString("them, is added. The peer is the hand-written custom executor's way of running each stage\n")
	b.WriteString("(`DOCKER_HOST=ssh://` `docker exec`: the docker CLI and ssh processes), per stage; the driver's per-stage\n")
	b.WriteString("figure includes the holder's forwarding.\n\n")
	b.WriteString("| what | CPU | peak RSS | processes |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| one job, cold launch | %s | %s | %d |\n", ms(cold), mib(coldRSS), coldCalls)
	fmt.Fprintf(&b, "| one job on a pooled worker | %s | %s | %d |\n", ms(pooled), mib(pooledRSS), pooledCalls)
	fmt.Fprintf(&b, "| the pool process's share of one pooled job | %s | %s (the pool's own) | 1 long-running |\n", ms(r.poolCPU), mib(r.poolRSS))
	ours, peer := medianOf(r.stages[0].runs, cpu), medianOf(r.stages[2].runs, cpu)
	fmt.Fprintf(&b, "\nPer run stage: the driver uses %s of CPU, the `DOCKER_HOST=ssh://` peer %s (ratio %.2f).\n", ms(ours), ms(peer), float64(ours)/float64(peer))
	perJob := pooled + r.poolCPU
	fmt.Fprintf(&b, "Sizing: a pooled job costs the manager %s of CPU in all, so one core keeps up with about %.1f such jobs\n", ms(perJob), time.Second.Seconds()/perJob.Seconds())
	fmt.Fprintf(&b, "starting every second; with jobs that run 10 minutes, that is about %.0f concurrent jobs per core (more\n", 600/perJob.Seconds())
	b.WriteString("stages add one process each, see the per-stage figure). Memory is per process and short-lived: each stage\n")
	b.WriteString("process exits when its stage ends.\n")
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// write writes the report, unless the machine was busy: then the figures could not
// be reproduced, so a busy run writes its report beside o.out (as o.out.busy) and
// fails, unless -allow-busy says to write it anyway.
func (r *report) write(o options) error {
	busy := r.machine.finish()
	out := o.out
	if busy != "" && !o.allowBusy && out != os.DevNull {
		out += ".busy"
	}
	if err := os.WriteFile(out, []byte(r.String(o)), 0o644); err != nil {
		return err
	}
	if out != o.out {
		return fmt.Errorf("the machine was busy: %s; %s is left as it was and this run's report is in %s (-allow-busy writes it anyway)", busy, o.out, out)
	}
	if busy != "" {
		fmt.Fprintf(os.Stderr, "bench: warning: the machine was busy: %s\n", busy)
	}
	return nil
}
