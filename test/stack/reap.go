package stack

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// registryFile lists every process any stack started ("pid<TAB>cmdline"), so a stack
// whose owner died without Down (a test binary killed by its timeout) is stopped by
// the next Up instead of holding the stack's ports.
const registryFile = "/tmp/ec2-executor-stack.procs"

func remember(pid int, args []string) {
	f, err := os.OpenFile(registryFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%d\t%s\n", pid, strings.Join(args, " "))
}

// reapStale stops processes from an earlier stack that are still alive, checking the
// command line so a reused PID is never signalled.
func reapStale() {
	data, err := os.ReadFile(registryFile)
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		pidText, cmdline, ok := strings.Cut(line, "\t")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil {
			continue
		}
		got, err := os.ReadFile("/proc/" + pidText + "/cmdline")
		if err != nil || string(bytes.TrimRight(bytes.ReplaceAll(got, []byte{0}, []byte{' '}), " ")) != cmdline {
			continue
		}
		logf("stack: stopping pid %d left by an earlier stack (%s)", pid, cmdline)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(registryFile)
}
