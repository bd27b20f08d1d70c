package stack

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the stack started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs a long-lived process in its own process group (so the runner
// simulator's signals never reach it) with output to logs/<name>.log.
func (s *Stack) start(name string, env []string, args ...string) (*proc, error) {
	return s.startWrapped(name, env, nil, args...)
}

// startWrapped runs args behind a wrapper that execs it (nsenter, unshare), and
// remembers args, the command line the process ends up with, for reapStale.
func (s *Stack) startWrapped(name string, env, wrapper []string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, wrapper...), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	remember(cmd.Process.Pid, args)
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	_ = os.WriteFile(filepath.Join(s.Dir, "pids", name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// stop sends SIGTERM, waits, then SIGKILLs.
func (p *proc) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopTree kills the process and every process it started (an sshd and the session
// processes serving its connections, which run in sessions of their own), as a
// machine going away would.
func (p *proc) stopTree() {
	for _, pid := range descendants(p.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// killTree SIGKILLs pid and every process below it.
func killTree(pid int) {
	for _, child := range descendants(pid) {
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) start after the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 {
			if ppid, err := strconv.Atoi(fields[1]); err == nil {
				children[ppid] = append(children[ppid], child)
			}
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls check until it succeeds, the process dies, or the timeout passes.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, check func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if check() {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before %s (see its log)", p.name, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
}

func httpUp(url string) func() bool {
	c := http.Client{Timeout: time.Second}
	return func() bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
}

// portFree fails clearly when something else already listens where the stack must.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (another stack running? try `make stack-down`): %w", addr, err)
	}
	return l.Close()
}

// pidsRunning lists the processes whose NUL-separated command line matches.
func pidsRunning(match func(cmdline []byte) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && match(cmdline) {
			pids = append(pids, pid)
		}
	}
	return pids
}
