package stack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	data, _ := os.ReadFile(registryFile)
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
	// Whatever still runs for a worker of an earlier stack, found by the worker's
	// directory on its command line: the check above misses an sshd (it rewrites its
	// command line) and a registry whose entry a later stack already removed, and an
	// sshd left listening on a worker's address answers the next worker given it.
	for _, pid := range pidsRunning(workerDir.Match) {
		logf("stack: stopping pid %d left by an earlier stack's worker", pid)
		killTree(pid)
	}
}

// workerDir matches a path in an instance's boot directory, where the stack keeps
// what it runs and mounts for that worker.
var workerDir = regexp.MustCompile(`/boot/i-[0-9a-f]+/`)

// workerMount matches where the stack mounts for a worker: in its boot directory (a
// private dockerd's data root and its containers' overlays, a real boot's root
// filesystem) or below a private dockerd's exec root in /run (its containers'
// network-namespace files).
var workerMount = regexp.MustCompile(workerDir.String() + `|^/run/` + netnsPrefix)

// unmountStale detaches, deepest first, every worker mount an earlier stack left
// and removes the exec roots under them. A stack that was killed could not take
// them down (its dockerds and nspawns were killed by reapStale and the real-boot
// cleanup, which unmount nothing), and nothing later would: one stack runs at a
// time, so when one starts every such mount is stale.
func unmountStale() {
	for _, m := range slices.Backward(staleWorkerMounts(Mounts())) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			logf("stack: unmounting %s left by an earlier stack: %v", m, err)
		}
	}
	roots, _ := filepath.Glob("/run/" + netnsPrefix + "*")
	for _, r := range roots {
		_ = os.RemoveAll(r)
	}
}

// staleWorkerMounts are the mount points that workerMount matches, in mount order.
func staleWorkerMounts(mounts []string) []string {
	var out []string
	for _, m := range mounts {
		if workerMount.MatchString(m) {
			out = append(out, m)
		}
	}
	return out
}
