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

func bench(ctx context.Context, binary, out string, runs int, boot, start time.Duration) error {
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
	s.Boot.SetBootDelay(boot)
	s.Boot.SetStartDelay(start)
	cold := series{name: "cold launch (no pool)", note: fmt.Sprintf("modelled: sshd answers %s after launch", boot)}
	for i := range runs {
		d, err := jobStart(ctx, binary, s.ReadySettingsFile, 9000+i)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: cold job %d: %s\n", i+1, d.Round(time.Millisecond))
		cold.runs = append(cold.runs, d)
	}
	pooled, err := pooledStarts(ctx, s, binary, filepath.Join(dir, "pool"), runs, boot, false)
	if err != nil {
		return err
	}
	stopped, err := pooledStarts(ctx, s, binary, filepath.Join(dir, "stopped"), runs, boot, true)
	if err != nil {
		return err
	}
	stopped.note = fmt.Sprintf("modelled: sshd answers %s after StartInstances", start)
	return writeReport(out, boot, start, runs, cold, pooled, stopped)
}

// pooledStarts runs jobs on a pool of as many idle (or stopped) workers as jobs.
func pooledStarts(ctx context.Context, s *stack.Stack, binary, dir string, runs int, boot time.Duration, stopped bool) (series, error) {
	out := series{name: "idle worker from the warm pool", note: "not modelled: no boot on the job's path"}
	if stopped {
		out.name = "stopped worker the pool starts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, err
	}
	cfg, socket, err := poolSettings(s, dir, runs, stopped)
	if err != nil {
		return out, err
	}
	p, err := startPool(binary, cfg)
	if err != nil {
		return out, err
	}
	defer p.stop()
	if err := waitReady(ctx, socket, runs, stopped, 2*boot+2*time.Minute); err != nil {
		return out, err
	}
	for i := range runs {
		d, err := jobStart(ctx, binary, cfg, 9100+i)
		if err != nil {
			return out, err
		}
		fmt.Fprintf(os.Stderr, "bench: %s, job %d: %s\n", out.name, i+1, d.Round(time.Millisecond))
		out.runs = append(out.runs, d)
	}
	return out, nil
}

func writeReport(path string, boot, start time.Duration, runs int, cold, pooled, stopped series) error {
	var b strings.Builder
	b.WriteString("# Performance\n\n")
	b.WriteString("Written by `make bench` (`go run ./bench`) from what it measured in one run on one machine; no figure is\n")
	b.WriteString("typed by hand. Reproduce with `make bench` after the README's set-up.\n\n")
	fmt.Fprintf(&b, "- Run: %s, %s, %d CPUs (%s), %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS+"/"+runtime.GOARCH,
		runtime.NumCPU(), cpuModel(), runtime.Version())
	b.WriteString("- Stack: moto_server behind the stack's proxy, real sshd per worker, Debian's dockerd, the runner simulator.\n\n")
	b.WriteString("## Job start: from the start of `prepare` to the first line of the job's script\n\n")
	fmt.Fprintf(&b, "%d jobs per path, one after another. The cold figure is modelled: moto reports an instance running at\n", runs)
	fmt.Fprintf(&b, "once, so the boot simulator starts the worker's sshd %s after launch, the time Amazon Linux 2023 takes on\n", boot)
	b.WriteString("AWS from RunInstances to SSH (about 5 s for the call and pending, 18 s to running, 3 s to sshd). A stock\n")
	b.WriteString("AMI that installs Docker at boot adds a minute or more, not modelled. The pooled figure involves no boot on\n")
	b.WriteString("the job's path and is measured as it is. The stopped figure is modelled too: moto starts a stopped\n")
	fmt.Fprintf(&b, "instance at once, so the boot simulator starts its sshd %s after StartInstances (an assumption for an\n", start)
	b.WriteString("EBS-backed instance, not a measurement; RunsOn reports a stopped instance taking a job in under 15 s).\n\n")
	b.WriteString("| path | median | fastest | slowest | ratio to cold | note |\n|---|---|---|---|---|---|\n")
	for _, s := range []series{cold, pooled, stopped} {
		r := slices.Clone(s.runs)
		slices.Sort(r)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.3f | %s |\n", s.name, round(s.median()), round(r[0]), round(r[len(r)-1]),
			float64(s.median())/float64(cold.median()), s.note)
	}
	fmt.Fprintf(&b, "\nA job on an idle pooled worker starts %.1f× faster than a cold one here, and one on a stopped worker %.1f× faster.\n",
		float64(cold.median())/float64(pooled.median()), float64(cold.median())/float64(stopped.median()))
	return os.WriteFile(path, []byte(b.String()), 0o644)
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
