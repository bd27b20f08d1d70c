package runnersim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Call is one driver invocation and how it ended.
type Call struct {
	Stage    string
	Start    time.Time
	ExitCode int // -1 when killed by a signal
	Duration time.Duration
	// Signalled is set when the stage's context ended and the runner sent SIGTERM;
	// AfterSignal is how long the driver took to exit after it.
	Signalled   bool
	AfterSignal time.Duration
	Killed      bool // SIGKILL was needed
	// Stderr is what a run stage wrote to stderr (up to 64 KiB), which the runner
	// also puts in the job log; Body is the script it was given.
	Stderr string
	Body   string
	// CPU is the user and system time the driver process (and any child it waited
	// for) used; MaxRSS its peak resident set in bytes, as last sampled (rusage's
	// maxrss would count this process's own RSS at the fork).
	CPU    time.Duration
	MaxRSS int64
}

// execDriver runs the driver in its own process group, as the runner does, and on
// ctx's end sends SIGTERM to the group, then SIGKILL after the graceful timeout.
func (r *run) execDriver(ctx context.Context, env []string, stdout, stderr io.Writer, args ...string) Call {
	call := Call{Stage: args[0]}
	if args[0] == "run" {
		call.Stage = args[2]
	}
	var errs capped
	cmd := exec.Command(r.opt.Binary, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.tmp, env, stdout, io.MultiWriter(stderr, &errs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	call.Start = start
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(r.log, "ERROR: failed to start command: %v\n", err)
		call.ExitCode = -2
		return call
	}
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { peak <- peakRSS(cmd.Process.Pid, done) }()
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		call.Signalled = true
		sig := time.Now()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(r.opt.GracefulKillTimeout):
			call.Killed = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-done:
			case <-time.After(r.opt.ForceKillTimeout):
				fmt.Fprintln(r.log, "ERROR: likely process is dormant")
			}
		}
		call.AfterSignal = time.Since(sig)
	}
	call.Duration = time.Since(start)
	call.ExitCode = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		call.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	call.MaxRSS = <-peak
	call.Stderr = errs.String()
	r.res.Calls = append(r.res.Calls, call)
	return call
}

// outcome is the runner's reading of a driver exit (command.go:103-146).
type outcome struct {
	ok     bool
	build  bool // BuildError: script_failure
	code   int  // exit code reported to GitLab for build failures
	reason string
}

func (r *run) judge(c Call) outcome {
	switch c.ExitCode {
	case 0:
		return outcome{ok: true}
	case 1:
		code := 1
		if b, err := os.ReadFile(r.exitCodeFile()); err == nil {
			n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
			if err != nil {
				return outcome{reason: "unknown exit code in build exit code file"}
			}
			code = n
		}
		return outcome{build: true, code: code, reason: "script_failure"}
	case 2:
		return outcome{reason: "exit status 2"}
	default:
		return outcome{reason: fmt.Sprintf("unknown Custom executor executable exit code %d", c.ExitCode)}
	}
}

// capped keeps the first 64 KiB written to it.
type capped struct{ lockedBuffer }

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 64<<10 - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// peakRSS samples the process's VmHWM every few milliseconds until done and returns
// the last value read, in bytes.
func peakRSS(pid int, done <-chan struct{}) int64 {
	var hwm int64
	for {
		hwm = max(hwm, VmHWM(pid))
		select {
		case <-done:
			return hwm
		case <-time.After(3 * time.Millisecond):
		}
	}
}

// VmHWM is a live process's peak resident set in bytes, from /proc (0 once it is gone).
func VmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
