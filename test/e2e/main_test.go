//go:build e2e

// Package e2e runs the real ec2-executor binary through the runner simulator against
// the local stack (moto over HTTP, dockerd, sshd per instance, the htpasswd registry).
// A missing stack component fails the run: these tests never skip.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

var (
	st     *stack.Stack
	binary string
)

// TestMain runs the suite with a temporary directory of its own (TMPDIR, for it and
// every process it starts) and then fails it when the run left a mount, a network
// namespace or a temporary file of its own on this machine.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "e2e") // short: Unix socket paths under it must fit 108 bytes
	// The stack's sshds read files under it as the workers' users.
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = os.Setenv("TMPDIR", tmp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	before := snapshotHost(tmp)
	code := run(m)
	if left := snapshotHost(tmp).leftSince(before); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the suite left behind on this machine:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	_ = os.RemoveAll(tmp)
	os.Exit(code)
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ec2-executor-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The stack's sshds read authorized_keys as the worker's user: the tree must be traversable.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(dir, "ec2-executor")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/ec2-executor").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the driver: %v\n%s", err, out)
		return 1
	}
	st, err = stack.Up(context.Background(), filepath.Join(dir, "stack"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the local stack did not come up: %v\n", err)
		return 1
	}
	defer st.Down()
	code := m.Run()
	if !finishReliability(code == 0) && code == 0 {
		code = 1
	}
	return code
}

// secrets are used by every job; none may appear in any output.
var secrets = []string{"job-token-e2e-9f8e7d", stack.RegistryPassword, stack.ECRToken}

func baseJob(id int) runnersim.Job {
	return runnersim.Job{ID: id, ProjectID: 7, PipelineID: 300 + id, Name: "e2e", Image: stack.JobImage, Token: secrets[0],
		Credentials: []runnersim.Credential{{URL: stack.RegistryAddr, Username: stack.RegistryUser, Password: stack.RegistryPassword}}}
}

// runJob drives one job and checks what every job must leave true: no secret in any
// output, and no instance of ours left running in moto.
func runJob(t *testing.T, job runnersim.Job, settingsFile string) runnersim.Result {
	t.Helper()
	if settingsFile == "" {
		settingsFile = st.SettingsFile
	}
	res := runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: settingsFile, Env: stack.Env(),
		GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond, API: st.JobsAPI})
	checkJob(t, res)
	return res
}

// checkJob logs a finished job and checks no secret escaped into its output or into a
// file the driver left readable, and that nothing of ours still runs.
func checkJob(t *testing.T, res runnersim.Result) {
	t.Helper()
	t.Logf("job log:\n%s\nrunner log (cleanup):\n%s", res.Log, res.RunnerLog)
	for _, s := range secrets {
		if strings.Contains(res.Log, s) || strings.Contains(res.RunnerLog, s) {
			t.Errorf("secret %q... appeared in the output", s[:4])
		}
	}
	scanWrittenFiles(t, filepath.Join(st.Dir, "state"))
	assertNoneRunning(t)
	if failed := st.Boot.Failures(); len(failed) > 0 {
		t.Errorf("instances that could not boot (user data rejected?): %v", failed)
	}
}

// scanWrittenFiles fails for any file under dir that holds a secret and is readable
// by anyone but its owner.
func scanWrittenFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() == 0o600 {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Errorf("%s (mode %v) holds a secret", path, info.Mode().Perm())
			}
		}
		return nil
	})
}

func assertNoneRunning(t *testing.T) {
	t.Helper()
	running, err := st.RunningOurs(context.Background())
	if err != nil {
		t.Fatalf("asking moto for instances: %v", err)
	}
	if len(running) > 0 {
		t.Errorf("instances of ours left running in moto: %v", running)
	}
}

func contains(t *testing.T, log string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(log, w) {
			t.Errorf("job log lacks %q", w)
		}
	}
}

// settingsFile writes the stack's settings changed by edit, for EC2 calls to endpoint.
func settingsFile(t *testing.T, name, endpoint string, edit func(*settings.Settings)) string {
	t.Helper()
	p, err := st.SettingsFor(name, endpoint, edit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// assertStages checks the driver calls the job made, in order.
func assertStages(t *testing.T, res runnersim.Result, want string) {
	t.Helper()
	var stages []string
	for _, c := range res.Calls {
		stages = append(stages, c.Stage)
	}
	if got := strings.Join(stages, " "); got != want {
		t.Errorf("stages %q, want %q", got, want)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q (%v)", path, old, err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}
