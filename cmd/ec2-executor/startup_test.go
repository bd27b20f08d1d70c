package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// startupBudget is what the initialisation of every package linked into the binary
// may allocate. Go runs every linked package's init in every process, whatever its
// command, and a running job keeps two of them (its holder and its `run` stage):
// what init allocates stays resident in both. The SSM and ECR clients are held
// below the releases that build their whole API's schema at init (1.8 MiB, see
// go.mod); this budget catches an upgrade, or a new dependency, that brings such a
// cost back.
const startupBudget = 3 << 20

// The test binary links every package the driver does (and the testing package), so
// its own init trace is the driver's, give or take a little.
func TestStartupAllocatesWithinItsBudget(t *testing.T) {
	if os.Getenv("EC2X_INITTRACE_CHILD") != "" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestStartupAllocatesWithinItsBudget$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "EC2X_INITTRACE_CHILD=1")
	var trace bytes.Buffer
	cmd.Stderr = &trace
	if err := cmd.Run(); err != nil {
		t.Fatalf("running the test binary with its init trace: %v\n%s", err, trace.String())
	}
	total, top := initAllocations(trace.String())
	if total == 0 {
		t.Fatalf("no init trace read from:\n%s", trace.String())
	}
	if total > startupBudget {
		t.Errorf("package inits allocate %d KiB, over the budget of %d KiB; the largest:\n%s", total>>10, startupBudget>>10, strings.Join(top, "\n"))
	}
}

// initAllocations sums the bytes GODEBUG=inittrace=1 reports ("init <pkg> @… ms, …
// ms clock, <n> bytes, …") and names the five largest.
func initAllocations(trace string) (int64, []string) {
	type pkg struct {
		name  string
		bytes int64
	}
	var total int64
	var pkgs []pkg
	sc := bufio.NewScanner(strings.NewReader(trace))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		n, err := strconv.ParseInt(f[7], 10, 64)
		if err != nil {
			continue
		}
		total += n
		pkgs = append(pkgs, pkg{f[1], n})
	}
	slices.SortFunc(pkgs, func(a, b pkg) int { return cmp.Compare(b.bytes, a.bytes) })
	var top []string
	for _, p := range pkgs[:min(5, len(pkgs))] {
		top = append(top, fmt.Sprintf("  %s: %d KiB", p.name, p.bytes>>10))
	}
	return total, top
}
