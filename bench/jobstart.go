package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/pool"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
	"github.com/ec2-executor/ec2-executor/workers"
)

// marker is what the job's first script line prints; the command line the runner
// echoes before it reads "bench-$((40+2))", so only the output matches.
const marker = "bench-42\n"

// firstLine notes when the marker first arrives in the job log.
type firstLine struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen time.Time
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen.IsZero() {
		f.buf.Write(p)
		if bytes.Contains(f.buf.Bytes(), []byte(marker)) {
			f.seen = time.Now()
		}
	}
	return len(p), nil
}

// jobStart runs one job and returns the time from the start of prepare to its
// script's first line.
func jobStart(ctx context.Context, binary, cfg string, id int) (time.Duration, runnersim.Result, error) {
	fl := &firstLine{}
	job := runnersim.Job{ID: id, ProjectID: 7, PipelineID: 900, Name: "bench", Image: stack.JobImage, Token: "bench-job-token",
		Script: []string{`echo "bench-$((40+2))"`}}
	res := runnersim.Run(ctx, job, runnersim.Options{Binary: binary, Settings: cfg, Env: stack.Env(), Log: fl,
		PrepareRetryInterval: 200 * time.Millisecond})
	if res.Status != "success" {
		return 0, res, fmt.Errorf("job %d ended %s (%s):\n%s", id, res.Status, res.FailureReason, res.Log)
	}
	for _, c := range res.Calls {
		if c.Stage == "prepare" {
			return fl.seen.Sub(c.Start), res, nil
		}
	}
	return 0, res, fmt.Errorf("job %d: no prepare call", id)
}

// poolProcess runs `ec2-executor pool` with cfg until stopped.
type poolProcess struct{ cmd *exec.Cmd }

func startPool(binary, cfg string) (*poolProcess, error) {
	cmd := exec.Command(binary, "--config", cfg, "pool")
	cmd.Env = append(os.Environ(), stack.Env()...)
	log, err := os.Create(cfg + ".log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	return &poolProcess{cmd}, cmd.Start()
}

// readyPool starts a pool of n idle (or stopped) workers sharing dir and waits
// within the given time until it has them; the caller stops it.
func readyPool(ctx context.Context, s *stack.Stack, binary, dir string, n int, stopped bool, within time.Duration) (string, *poolProcess, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	cfg, socket, err := poolSettings(s, dir, n, stopped)
	if err != nil {
		return "", nil, err
	}
	p, err := startPool(binary, cfg)
	if err != nil {
		return "", nil, err
	}
	if err := waitReady(ctx, socket, n, stopped, within); err != nil {
		p.stop()
		return "", nil, err
	}
	return cfg, p, nil
}

// waitReady waits until the pool on socket has n idle (or stopped) workers.
func waitReady(ctx context.Context, socket string, n int, stopped bool, within time.Duration) error {
	state := workers.PoolIdle
	if stopped {
		state = workers.PoolStopped
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, err := pool.QueryStatus(ctx, socket); err == nil && st.Workers[state] >= n {
			return nil
		}
	}
	return fmt.Errorf("the pool did not have %d %s workers within %s", n, state, within)
}

// usage is the pool process's CPU time so far and its peak resident set in bytes.
func (p *poolProcess) usage() (time.Duration, int64) {
	return procUsage(p.cmd.Process.Pid)
}

// stop ends the pool (with terminate_on_shutdown in its settings).
func (p *poolProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait()
}

// poolSettings are the stack's settings with a pool of n idle (or stopped) workers
// sharing dir.
func poolSettings(s *stack.Stack, dir string, n int, stopped bool) (string, string, error) {
	cfg, err := s.SettingsFor(filepath.Base(dir)+"-pool.toml", s.Endpoint(), func(c *settings.Settings) {
		c.StateDir = dir
		c.Registry.DockerConfig = filepath.Join(s.Dir, "manager-docker", "config.json")
		c.Pool.IdleCount = n
		if stopped {
			c.Pool.IdleCount, c.Pool.StoppedCount = 0, n
		}
		c.Pool.PollInterval = settings.Duration{Duration: 500 * time.Millisecond}
		c.Pool.PrepullImages = []string{stack.JobImage, stack.HelperImage}
		c.Pool.TerminateOnShutdown = true
		c.Reap.FromCleanup = false
	})
	return cfg, filepath.Join(dir, "pool.sock"), err
}

// procUsage reads a live process's user+system CPU time and VmHWM from /proc.
func procUsage(pid int) (time.Duration, int64) {
	var cpu time.Duration
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command's closing parenthesis; utime and stime are the
		// 12th and 13th of them, in clock ticks of 1/100 s on Linux.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 13 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				s, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = time.Duration(u+s) * 10 * time.Millisecond
			}
		}
	}
	return cpu, runnersim.VmHWM(pid)
}
