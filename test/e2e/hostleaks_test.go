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

// hostState is what a test run could leave behind on this machine, of what the
// suite itself makes: mount points under its own temporary directory or the
// stack's /run/ec2x-… roots, network namespaces with the stack's prefixes, and
// entries in the suite's own temporary directory (TestMain points TMPDIR there).
// What other work on a shared machine does is none of its business.
type hostState struct {
	mounts, namespaces, temp []string
}

func snapshotHost(tmp string) hostState {
	var h hostState
	for _, m := range stack.Mounts() {
		if strings.HasPrefix(m, tmp+"/") || strings.HasPrefix(m, "/run/ec2x") {
			h.mounts = append(h.mounts, m)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			name, _, _ := strings.Cut(line, " ")
			if slices.ContainsFunc(stack.NamespacePrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
				h.namespaces = append(h.namespaces, name)
			}
		}
	}
	entries, _ := os.ReadDir(tmp)
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
	diff("mount", h.mounts, before.mounts)
	diff("network namespace", h.namespaces, before.namespaces)
	diff("temporary file", h.temp, before.temp)
	return left
}
