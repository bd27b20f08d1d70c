//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// TestPrepareKilledAfterRunInstancesLeaksNothing kills prepare with SIGKILL after EC2
// launched its instance but before the driver saw the answer (so its state has no
// instance id), then shows that reap, and separately a later cleanup, terminate it.
func TestPrepareKilledAfterRunInstancesLeaksNothing(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	cfg := settingsFile(t, "killed.toml", proxy.URL, func(s *settings.Settings) {
		s.StateDir = t.TempDir()
		s.Reap.GracePeriod = settings.Duration{}
		s.Reap.FromCleanup = false
	})
	d := stageDriver{t: t, cfg: cfg, proxy: proxy}
	first, second := fmt.Sprintf("3101-%08x", rand.Uint32()), fmt.Sprintf("3102-%08x", rand.Uint32())

	id := d.killPrepareAfterLaunch(first)
	out := d.run(first, "instances")
	if !strings.Contains(out, id) || !strings.Contains(out, first) {
		t.Errorf("instances does not list the orphan %s:\n%s", id, out)
	}
	if out := d.run(first, "reap", "--dry-run"); !strings.Contains(out, "would terminate "+id) || d.state(id) != types.InstanceStateNameRunning {
		t.Fatalf("dry run did not just list %s (state %s):\n%s", id, d.state(id), out)
	}
	if out := d.run(first, "reap"); !strings.Contains(out, "terminated "+id+" (job "+first+", manager stack): its job state has no instance id") {
		t.Errorf("reap output:\n%s", out)
	}
	if s := d.state(id); s != types.InstanceStateNameTerminated && s != types.InstanceStateNameShuttingDown {
		t.Fatalf("reap left %s %s", id, s)
	}
	d.run(first, "cleanup") // the runner's cleanup after the killed prepare: still succeeds

	id = d.killPrepareAfterLaunch(second)
	if out := d.run(second, "cleanup"); !strings.Contains(out, "Terminated instance "+id) {
		t.Errorf("cleanup did not find %s by its tags:\n%s", id, out)
	}
	d.run(second, "cleanup") // twice is fine
	assertNoneRunning(t)
	record(t, "fault", "prepare SIGKILLed between RunInstances and its answer, then `reap` / `cleanup`",
		"the orphan is listed by `instances`, terminated by `reap` (and, separately, by `cleanup` from its tags)")
}

// stageDriver runs single driver stages by hand, as the runner would.
type stageDriver struct {
	t     *testing.T
	cfg   string
	proxy *stack.Proxy
}

func (d stageDriver) command(key string, args ...string) *exec.Cmd {
	job := baseJob(3100)
	job.Script = []string{"true"}
	env, err := job.StageEnv(runnersim.Options{Settings: d.cfg, Env: stack.Env()}, d.t.TempDir(), map[string]string{"EC2_EXECUTOR_JOB_KEY": key})
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	return cmd
}

// run runs a stage or command that must succeed and returns what it printed.
func (d stageDriver) run(key string, args ...string) string {
	d.t.Helper()
	out, err := d.command(key, args...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("ec2-executor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			d.t.Errorf("ec2-executor %s printed a secret", args[0])
		}
	}
	return string(out)
}

// killPrepareAfterLaunch starts prepare and SIGKILLs it once moto has answered its
// RunInstances, before the answer reaches it. It returns the launched instance's id.
func (d stageDriver) killPrepareAfterLaunch(key string) string {
	d.t.Helper()
	cmd := d.command(key, "prepare")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	launched, release := make(chan struct{}), make(chan struct{})
	d.proxy.OnAnswered(func(action string) {
		if action == "RunInstances" {
			close(launched)
			<-release
		}
	})
	defer d.proxy.OnAnswered(nil)
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-launched:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		d.t.Fatalf("prepare never launched:\n%s", out.String())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	close(release)
	insts, err := st.InstancesByTag(d.t.Context(), "ec2-executor:job-key", key)
	if err != nil || len(insts) != 1 {
		d.t.Fatalf("want the one launched instance, got %d (%v)", len(insts), err)
	}
	return aws.ToString(insts[0].InstanceId)
}

func (d stageDriver) state(id string) types.InstanceStateName {
	d.t.Helper()
	insts, err := st.InstancesByTag(d.t.Context(), "managed-by", "ec2-executor")
	if err != nil {
		d.t.Fatal(err)
	}
	for _, in := range insts {
		if aws.ToString(in.InstanceId) == id {
			return in.State.Name
		}
	}
	return ""
}
