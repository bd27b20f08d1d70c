//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/ec2-executor/ec2-executor/test/stack"
)

// hostState is what a test run could leave behind on this machine: mount points,
// network namespaces and entries in the temporary directory.
type hostState struct {
	mounts, namespaces, temp []string
}

func snapshotHost() hostState {
	var h hostState
	h.mounts = stack.Mounts()
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if name, _, _ := strings.Cut(line, " "); name != "" {
				h.namespaces = append(h.namespaces, name)
			}
		}
	}
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "go-build") { // the go command's own, gone when it exits
			h.temp = append(h.temp, e.Name())
		}
	}
	return h
}

// leftSince lists what exists now and did not before the run.
func (h hostState) leftSince(before hostState) []string {
	var left []string
	diff := func(kind string, now, then []string) {
		for _, x := range now {
			if !slices.Contains(then, x) {
				left = append(left, fmt.Sprintf("%s %s", kind, x))
			}
		}
	}
	// iproute2 makes /run/netns a shared mount the first time any namespace is added,
	// once per boot of the machine: that is setup, not a leak.
	diff("mount", slices.DeleteFunc(slices.Clone(h.mounts), func(m string) bool { return m == "/run/netns" }), before.mounts)
	diff("network namespace", h.namespaces, before.namespaces)
	diff("temporary file", h.temp, before.temp)
	return left
}
