package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// What the manager pays while jobs run: n pooled jobs sit in their build script at
// once (each with its stage's `run` process and its connection holder), and every
// process of the driver's binary is measured then. Summed RSS counts the binary's
// file-backed pages (about 19 MiB of its 75 MiB, shared by every process running
// it) once per process; PSS divides each shared page among the processes that map
// it, so PSS is what each job really adds, and the anonymous (private) memory is
// what no other process could share.

// runningMark is what each held job's script prints before it waits; it waits until
// releaseFile exists in its container (at most runningFor), so that every job is
// still in its script when the last one gets there.
const (
	runningMark = "ec2x-bench-running"
	releaseFile = "/tmp/ec2x-bench-release"
)

// procMem is one process's memory, files and threads, from /proc.
type procMem struct {
	rss, pss, anon int64 // bytes
	fds, threads   int
}

// running is the section's measurement.
type running struct {
	jobs        int
	all         procMem // every driver process, summed
	holders     procMem // the jobs' holders alone, summed
	stages      procMem // the jobs' `run` processes alone, summed
	other       procMem // the pool
	nHold, nRun int
	nOther      int
	idle        time.Duration // how long idle CPU was measured
	idleCPU     time.Duration // CPU of every driver process over idle
}

// runningJobs holds n pooled jobs in their build script and measures the driver's
// processes while they wait.
func runningJobs(ctx context.Context, s *stack.Stack, o options, dir string) (running, error) {
	r := running{jobs: o.running, idle: 5 * time.Second}
	cfg, p, err := readyPool(ctx, s, o.binary, dir, o.running, false, 5*time.Minute)
	if err != nil {
		return r, err
	}
	defer p.stop()
	seen := make(chan int, o.running)
	var wg sync.WaitGroup
	errs := make(chan error, o.running)
	for i := range o.running {
		wg.Go(func() {
			if err := heldJob(ctx, o, cfg, 9600+i, seen); err != nil {
				errs <- err
			}
		})
	}
	if err := waitSeen(ctx, seen, errs, o.running, 5*time.Minute); err != nil {
		release(ctx) // else the jobs that got there wait out runningFor
		wg.Wait()
		return r, err
	}
	r.measure(o.binary)
	release(ctx)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, err
	}
	if r.nHold != o.running || r.nRun != o.running {
		return r, fmt.Errorf("measured %d holders and %d run stages for %d jobs in their script: a job ended or had no holder", r.nHold, r.nRun, o.running)
	}
	return r, nil
}

// release lets the held jobs' scripts end: it creates releaseFile in every build
// container on the stack's Docker.
func release(ctx context.Context) {
	ids, _ := output(exec.CommandContext(ctx, "docker", "ps", "-q", "--filter", "name=-build$"))
	for _, id := range strings.Fields(ids) {
		_ = exec.CommandContext(ctx, "docker", "exec", id, "touch", releaseFile).Run()
	}
}

// heldJob runs one job whose script prints runningMark and then waits for its
// release.
func heldJob(ctx context.Context, o options, cfg string, id int, seen chan<- int) error {
	w := &markWriter{mark: runningMark, seen: func() { seen <- id }}
	job := runnersim.Job{ID: id, ProjectID: 7, PipelineID: 901, Name: "bench-running", Image: stack.JobImage,
		Token: "bench-job-token", Script: []string{"echo " + runningMark,
			fmt.Sprintf("i=0; while [ ! -e %s ] && [ $i -lt %d ]; do sleep 1; i=$((i+1)); done", releaseFile, int(o.runningFor.Seconds()))}}
	res := runnersim.Run(ctx, job, runnersim.Options{Binary: o.binary, Settings: cfg, Env: stack.Env(), Log: w,
		PrepareRetryInterval: 200 * time.Millisecond})
	if res.Status != "success" {
		return fmt.Errorf("held job %d ended %s (%s):\n%s", id, res.Status, res.FailureReason, tail(res.Log))
	}
	return nil
}

// waitSeen waits until n jobs printed their mark, or one failed.
func waitSeen(ctx context.Context, seen <-chan int, errs <-chan error, n int, within time.Duration) error {
	timeout := time.After(within)
	for got := 0; got < n; {
		select {
		case <-seen:
			got++
		case err := <-errs:
			return err
		case <-timeout:
			return fmt.Errorf("only %d of %d held jobs were running after %s", got, n, within)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// markWriter calls seen once, when the job log first holds mark.
type markWriter struct {
	mark string
	buf  []byte
	once sync.Once
	seen func()
}

func (m *markWriter) Write(p []byte) (int, error) {
	m.buf = append(m.buf, p...)
	if strings.Contains(string(m.buf), "\n"+m.mark) || strings.HasPrefix(string(m.buf), m.mark) {
		m.once.Do(m.seen)
		m.buf = nil
	} else if len(m.buf) > 4096 {
		m.buf = m.buf[len(m.buf)-len(m.mark)-1:]
	}
	return len(p), nil
}

// measure reads every process running binary: memory and files at once, then CPU
// over r.idle while the jobs only wait.
func (r *running) measure(binary string) {
	procs := driverProcs(binary)
	before := map[int]time.Duration{}
	for pid := range procs {
		before[pid], _ = procUsage(pid)
	}
	for pid, role := range procs {
		m := readProcMem(pid)
		r.all.add(m)
		switch role {
		case "hold":
			r.holders.add(m)
			r.nHold++
		case "run":
			r.stages.add(m)
			r.nRun++
		default:
			r.other.add(m)
			r.nOther++
		}
	}
	time.Sleep(r.idle)
	for pid := range procs {
		if after, _ := procUsage(pid); after >= before[pid] {
			r.idleCPU += after - before[pid]
		}
	}
}

func (m *procMem) add(o procMem) {
	m.rss += o.rss
	m.pss += o.pss
	m.anon += o.anon
	m.fds += o.fds
	m.threads += o.threads
}

// driverProcs are the live processes of binary, by the driver command they run
// ("hold", "run", "pool", …).
func driverProcs(binary string) map[int]string {
	out := map[int]string{}
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, e := range exes {
		if target, err := os.Readlink(e); err != nil || target != binary {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e, "/proc/"), "/exe"))
		if err != nil {
			continue
		}
		out[pid] = driverCommand(pid)
	}
	return out
}

// driverCommand is the first of a driver process's arguments that names a command.
func driverCommand(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for _, a := range strings.Split(string(b), "\x00") {
		switch a {
		case "hold", "run", "pool", "prepare", "cleanup", "config":
			return a
		}
	}
	return "other"
}

// readProcMem reads one process's smaps_rollup, status and fd directory.
func readProcMem(pid int) procMem {
	var m procMem
	rollup := kbFields(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	status := kbFields(fmt.Sprintf("/proc/%d/status", pid))
	m.rss, m.pss, m.anon = rollup["Rss"], rollup["Pss"], rollup["Anonymous"]
	m.threads = int(status["Threads"] / 1024)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	m.fds = len(fds)
	return m
}

// kbFields reads a /proc file of "Name: value [kB]" lines, values in bytes (a
// plain number is multiplied by 1024 too, and divided back by the caller).
func kbFields(path string) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[k] = n * 1024
		}
	}
	return out
}

// runningSection is the report's section.
func runningSection(r running) string {
	var b strings.Builder
	n := int64(max(r.jobs, 1))
	fmt.Fprintf(&b, "## Manager memory while %d jobs run\n\n", r.jobs)
	fmt.Fprintf(&b, "%d jobs from a warm pool, each waiting in its build script at once; then every process of the driver's\n", r.jobs)
	b.WriteString("binary is read from /proc: `smaps_rollup` (RSS, PSS: shared pages divided among the processes that map them,\n")
	b.WriteString("and anonymous memory, which no process shares), open files, threads, and CPU over " + r.idle.String() + " while the jobs only wait.\n")
	b.WriteString("Summed RSS counts the binary's shared file pages once per process; PSS is what each job adds to the machine.\n\n")
	b.WriteString("| processes | count | RSS per job | PSS per job | anonymous per job | open files per job | threads per job |\n|---|---|---|---|---|---|---|\n")
	row := func(name string, count int, m procMem) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %.1f | %.1f |\n", name, count, mib(m.rss/n), mib(m.pss/n), mib(m.anon/n),
			float64(m.fds)/float64(n), float64(m.threads)/float64(n))
	}
	row("all of the driver's", r.nHold+r.nRun+r.nOther, r.all)
	row("the jobs' connection holders (`hold`)", r.nHold, r.holders)
	row("the jobs' run stages (`run`, while the script runs)", r.nRun, r.stages)
	row("the pool (shared by all jobs) and any other", r.nOther, r.other)
	fmt.Fprintf(&b, "\nIdle CPU: %s for all of them over %s (%s per job per second).\n",
		ms(r.idleCPU), r.idle, time.Duration(float64(r.idleCPU)/float64(n)/r.idle.Seconds()).Round(time.Microsecond))
	fmt.Fprintf(&b, "Goal (issue 23): at most 8 MiB per running job, at most 2 MiB for its held connection: %s by PSS (%s per job, holder %s), %s by summed RSS (%s).\n",
		metOr(r.all.pss/n <= 8<<20 && r.holders.pss/n <= 2<<20), mib(r.all.pss/n), mib(r.holders.pss/n),
		metOr(r.all.rss/n <= 8<<20 && r.holders.rss/n <= 2<<20), mib(r.all.rss/n))
	return b.String()
}

func metOr(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}
