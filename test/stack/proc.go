package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
