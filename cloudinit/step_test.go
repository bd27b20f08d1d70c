package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runStep runs the step wrapper as cloud-init's runcmd would, with the failure
// report in a temporary file.
func runStep(t *testing.T, report string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	step := filepath.Join(dir, "step")
	if err := os.WriteFile(step, []byte(stepScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(step, args...)
	cmd.Env = append(os.Environ(), "EC2X_FAILED="+report)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStepReportsAFailureWithItsLastLines(t *testing.T) {
	report := filepath.Join(t.TempDir(), "state", "failed")
	out, err := runStep(t, report, "install-docker", `for i in $(seq 1 30); do echo "line $i"; done; echo "E: $1 is down" >&2; exit 100`, "the mirror")
	if err == nil || !strings.Contains(out, "line 1\n") || !strings.Contains(out, "E: the mirror is down") {
		t.Fatalf("the step's output must still reach cloud-init's log, and its exit code stay: %v\n%s", err, out)
	}
	got, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := "install-docker failed (exit code 100):\n"
	if !strings.HasPrefix(string(got), want) || !strings.Contains(string(got), "E: the mirror is down") ||
		strings.Contains(string(got), "line 16\n") || !strings.Contains(string(got), "line 30\n") {
		t.Fatalf("report: want its name, exit code and the last 15 lines:\n%s", got)
	}
}

func TestStepThatSucceedsReportsNothing(t *testing.T) {
	report := filepath.Join(t.TempDir(), "failed")
	if out, err := runStep(t, report, "start-docker", `echo started "$0"`); err != nil || out != "started start-docker\n" {
		t.Fatalf("%v: %q", err, out)
	}
	if _, err := os.Stat(report); !os.IsNotExist(err) {
		t.Fatalf("a step that succeeded wrote a report: %v", err)
	}
}
