//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// TestPrepareKilledLaterLeavesNothingAfterCleanup kills prepare with SIGKILL while it
// waits for the worker's sshd, and once the job's containers exist; the runner's
// cleanup then leaves no instance and no container.
func TestPrepareKilledLaterLeavesNothingAfterCleanup(t *testing.T) {
	state := t.TempDir()
	cfg := settingsFile(t, "killed-later.toml", st.Endpoint(), func(s *settings.Settings) {
		s.StateDir = state
		s.Reap.FromCleanup = false
	})
	d := stageDriver{t: t, cfg: cfg}
	stateHasInstance := func(key string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(filepath.Join(state, "jobs", key+".json"))
			return bytes.Contains(b, []byte(`"instance_id"`))
		}
	}
	containersExist := func(key string) func() bool {
		return func() bool { return len(jobContainers(t, key)) >= 2 } // helper and build
	}
	st.Boot.SetBootDelay(5 * time.Second)
	waiting := fmt.Sprintf("3103-%08x", rand.Uint32())
	d.killPrepareWhen(waiting, stateHasInstance(waiting))
	st.Boot.SetBootDelay(0)
	d.run(waiting, "cleanup")
	assertNoneRunning(t)
	record(t, "fault", "prepare SIGKILLed while waiting for the worker's sshd, then `cleanup`", "instance terminated by `cleanup` from the saved state")

	built := fmt.Sprintf("3104-%08x", rand.Uint32())
	d.killPrepareWhen(built, containersExist(built))
	d.run(built, "cleanup")
	assertNoneRunning(t)
	assertNoJobContainers(t, built)
	record(t, "fault", "prepare SIGKILLed after the job's containers exist, then `cleanup`", "containers removed and instance terminated by `cleanup`")

	corrupt := fmt.Sprintf("3105-%08x", rand.Uint32())
	d.killPrepareWhen(corrupt, stateHasInstance(corrupt))
	if err := os.WriteFile(filepath.Join(state, "jobs", corrupt+".json"), []byte(`{"job_key": "`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := d.run(corrupt, "cleanup"); !strings.Contains(out, "Job state unreadable; finding the instance by its tags") {
		t.Errorf("cleanup with corrupt state:\n%s", out)
	}
	assertNoneRunning(t)
	record(t, "bad input", "state file corrupt at `cleanup` (after a killed prepare)", "warning \"Job state unreadable; finding the instance by its tags\", instance terminated")
}

// killPrepareWhen starts prepare and SIGKILLs it as soon as ready reports true.
func (d stageDriver) killPrepareWhen(key string, ready func() bool) {
	d.t.Helper()
	cmd := d.command(key, "prepare")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); !ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.t.Fatalf("prepare never got there:\n%s", out.String())
		}
	}
}

// jobContainers lists the containers labelled with a job key on the shared dockerd.
func jobContainers(t *testing.T, key string) []string {
	t.Helper()
	names, err := stack.JobContainers(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPrepareKilledBeforeLaunchLeavesNothing kills prepare while its RunInstances is
// in flight and never reaches EC2: nothing exists, and cleanup still succeeds.
func TestPrepareKilledBeforeLaunchLeavesNothing(t *testing.T) {
	proxy := stack.NewProxy()
	defer proxy.Close()
	seen, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	proxy.SetFault(func(action string, _ url.Values, w http.ResponseWriter) bool {
		if action != "RunInstances" {
			return false
		}
		once.Do(func() { close(seen) })
		<-release
		stack.EC2Error(w, http.StatusInternalServerError, "InternalError", "the caller is gone")
		return true
	})
	cfg := settingsFile(t, "killed-before.toml", proxy.URL, func(s *settings.Settings) {
		s.StateDir = t.TempDir()
		s.Reap.FromCleanup = false
	})
	d := stageDriver{t: t, cfg: cfg}
	key := fmt.Sprintf("3106-%08x", rand.Uint32())
	d.killPrepareWhen(key, func() bool {
		select {
		case <-seen:
			return true
		default:
			return false
		}
	})
	close(release)
	d.run(key, "cleanup")
	if insts, err := st.InstancesByTag(t.Context(), "ec2-executor:job-key", key); err != nil || len(insts) != 0 {
		t.Errorf("instances for a prepare killed before launch: %d (%v)", len(insts), err)
	}
	record(t, "fault", "prepare SIGKILLed before RunInstances reaches EC2, then `cleanup`", "no instance exists; `cleanup` succeeds")
}
