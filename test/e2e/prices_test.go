//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// TestPricesUpdateFetchesThePriceListAndJobsAreCostedAtIt runs `prices update`
// against the stack's Price List stand-in (moto has none), then a job: its cost line
// uses the fetched price and says where it came from.
func TestPricesUpdateFetchesThePriceListAndJobsAreCostedAtIt(t *testing.T) {
	state := t.TempDir()
	cfg := settingsFile(t, "prices.toml", st.Endpoint(), func(s *settings.Settings) { s.StateDir = state })
	update := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"--config", cfg, "prices", "update"}, args...)...)
		cmd.Env = append(os.Environ(), stack.Env()...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := update()
	if err != nil || !strings.Contains(out, stack.Region+": 5 instance types' Linux on-demand prices from AWS's Price List API") {
		t.Fatalf("prices update: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(state, "prices", "ondemand.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the table: %v, %v", fi, err)
	}
	out, err = update("--region", "xx-nowhere-1")
	if err == nil || !strings.Contains(out, "no Linux on-demand price for any instance type in xx-nowhere-1") {
		t.Errorf("an unknown region: %v\n%s", err, out)
	}
	job := baseJob(3201)
	job.Script = []string{"echo costed"}
	res := runJob(t, job, cfg)
	contains(t, res.RunnerLog, "The job's worker, t3.micro on-demand in "+stack.Region, "($0.0108 an hour, AWS Price List API, fetched ")
}
