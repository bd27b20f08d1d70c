// Command stack starts and stops the local test stack from the command line:
//
//	stack up    starts it in the background, prints the driver settings file's path
//	stack down  stops it (every process by its PID)
//	stack serve runs it in the foreground until SIGTERM (what `up` starts)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ec2-executor/ec2-executor/test/stack"
)

func main() {
	dir := os.Getenv("EC2X_STACK_DIR")
	if dir == "" {
		dir = "/tmp/ec2-executor-stack"
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: stack up|down|serve")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(dir)
	case "down":
		err = down(dir)
	case "serve":
		err = serve(dir)
	default:
		err = fmt.Errorf("unknown command %q (want up, down or serve)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

// up starts `serve` detached (own session, stdio to a log file, so no caller waits on
// its pipes) and waits until it reports ready.
func up(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ready := filepath.Join(dir, "ready")
	_ = os.Remove(ready)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "serve")
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logf, logf, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "serve.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		if b, err := os.ReadFile(ready); err == nil {
			fmt.Println(strings.TrimSpace(string(b)))
			return nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("stack exited during start-up (%v):\n%s", err, log)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("stack not ready after 5 minutes; see " + logf.Name())
}

func serve(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := stack.Up(ctx, dir)
	if err != nil {
		return err
	}
	defer s.Down()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("export "+strings.Join(stack.Env(), " ")+"\n"), 0o600); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s\n# AWS variables for the driver: . %s", s.ReadySettingsFile, envFile)
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(msg), 0o600); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stack: stopping")
	return nil
}

func down(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "serve.pid"))
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "stack: not running")
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("corrupt pid file: %w", err)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			_ = os.Remove(filepath.Join(dir, "serve.pid"))
			_ = os.Remove(filepath.Join(dir, "ready"))
			fmt.Fprintln(os.Stderr, "stack: down")
			return nil
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("stack (pid %d) did not stop within 60s; killed it", pid)
}
