//go:build e2e && soak

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
	"github.com/ec2-executor/ec2-executor/workers"
)

// The soak: jobs of every kind arrive at random for EC2X_SOAK (30m unless set) on a
// pool, and on cold launches beside it, while faults are injected at random. At
// the end every job has reached a final state with a classification its kind and
// the faults it met allow, no worker served two jobs, nothing is left running or
// behind, and the pool's memory did not grow. `make soak` runs it; .ci/run runs
// ten minutes.

// soakKind is one kind of job and the outcomes it may end with (the first without
// a fault; the rest only when a fault overlapped it).
type soakKind struct {
	name string
	job  func(id int) runnersim.Job
	want string // status/failure reason
}

var soakKinds = []soakKind{
	{"success", func(id int) runnersim.Job { j := baseJob(id); j.Script = []string{"echo soak ok", "sleep 2"}; return j }, "success/"},
	{"failure", func(id int) runnersim.Job { j := baseJob(id); j.Script = []string{"exit 3"}; return j }, "failed/script_failure"},
	{"cancel", func(id int) runnersim.Job {
		j := baseJob(id)
		j.Script = []string{"sleep 60"}
		j.Interrupt = runnersim.Interrupt{Stage: "build_script", After: 2 * time.Second}
		return j
	}, "canceled/"},
	{"timeout", func(id int) runnersim.Job {
		j := baseJob(id)
		j.Script = []string{"sleep 60"}
		j.Interrupt = runnersim.Interrupt{Stage: "build_script", After: 2 * time.Second, Timeout: true}
		return j
	}, "failed/job_execution_timeout"},
	{"services", func(id int) runnersim.Job {
		j := baseJob(id)
		j.Services = []runnersim.Service{{Name: stack.ServiceImage, Alias: "svc"}}
		j.Script = []string{"echo with a service"}
		return j
	}, "success/"},
}

type soakJob struct {
	kind       string
	cold       bool
	start, end time.Time
	res        runnersim.Result
}

type soakFault struct {
	kind     string
	from, to time.Time
}

var usingWorker = regexp.MustCompile(`Using worker (i-[0-9a-f]+)`)

func TestSoak(t *testing.T) {
	length := 30 * time.Minute
	if v := os.Getenv("EC2X_SOAK"); v != "" {
		var err error
		if length, err = time.ParseDuration(v); err != nil {
			t.Fatalf("EC2X_SOAK=%q: %v", v, err)
		}
	}
	p := newPool(t, "soak", 2, func(s *settings.Settings) {
		s.Pool.StoppedCount = 1
		s.Pool.PrepullImages = nil
		s.Pool.IdleTime = settings.Duration{Duration: 30 * time.Second}
		s.Pool.ClaimTimeout = settings.Duration{Duration: 2 * time.Minute}
	})
	coldCfg := settingsFile(t, "soak-cold.toml", p.jobProxy.URL, func(s *settings.Settings) {
		s.StateDir = t.TempDir() // no pool socket: every job launches its own
		s.Reap.FromCleanup = false
	})
	p.start()
	p.waitIdle(2)
	deadline := time.Now().Add(length)
	var mu sync.Mutex
	var jobs []soakJob
	var faults []soakFault
	var rss []int64 // the pool's, sampled; reset when it restarts
	done := make(chan struct{})
	var wg sync.WaitGroup
	for lane := range 3 {
		wg.Go(func() {
			for id := 20000 + lane*10000; time.Now().Before(deadline); id++ {
				k := soakKinds[rand.IntN(len(soakKinds))]
				j := soakJob{kind: k.name, cold: rand.IntN(4) == 0, start: time.Now()}
				opts := runnersim.Options{Binary: binary, Settings: p.jobCfg, Env: stack.Env(), GracefulKillTimeout: 30 * time.Second,
					PrepareRetryInterval: 200 * time.Millisecond, ForgetLog: false}
				if j.cold {
					opts.Settings = coldCfg
				}
				j.res = runnersim.Run(t.Context(), k.job(id), opts)
				j.end = time.Now()
				mu.Lock()
				jobs = append(jobs, j)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for n := rand.IntN(faultKinds); ; n++ {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(15+rand.IntN(20)) * time.Second):
			}
			from := time.Now()
			kind := p.injectFault(n)
			mu.Lock()
			faults = append(faults, soakFault{kind, from, time.Now()})
			if kind == "pool SIGKILLed and restarted" {
				rss = nil
			} else if r := processRSS(p.cmd.Process.Pid); r > 0 {
				rss = append(rss, r)
			}
			mu.Unlock()
		}
	})
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	close(done)
	wg.Wait()
	p.poolProxy.SetFault(nil)
	p.jobProxy.SetFault(nil)
	report := p.checkSoak(jobs, faults, rss)
	p.finish()
	if out, _ := exec.Command("pgrep", "-f", binary+" (run|hold|prepare|cleanup)").Output(); len(out) > 0 {
		t.Errorf("driver processes left running: %s", out)
	}
	if os.Getenv("EC2X_SOAK_WRITE") != "" && !t.Failed() {
		if err := os.WriteFile("../../docs/soak.md", []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// faultKinds is how many kinds injectFault makes.
const faultKinds = 7

// injectFault makes fault n (mod faultKinds) and says which. The soak goes round
// them from a random start, so that a short soak meets every kind.
func (p *poolSetup) injectFault(n int) string {
	switch n % faultKinds {
	case 0:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p.start()
		return "pool SIGKILLed and restarted"
	case 1:
		storm(p, http.StatusServiceUnavailable, "RequestLimitExceeded")
		return "EC2 throttling storm (5 s, half the calls)"
	case 2:
		storm(p, http.StatusInternalServerError, "InternalError")
		return "EC2 500s (5 s, half the calls)"
	case 3:
		_ = exec.Command("pkill", "-KILL", "-f", binary+" hold").Run()
		return "job holders SIGKILLed"
	case 4:
		if id := busyWorker(); id != "" {
			st.Boot.StopSSHD(id)
			return "a worker's sshd killed"
		}
	case 5:
		if id := busyWorker(); id != "" {
			_ = st.TerminateInstance(p.t.Context(), id)
			return "a worker terminated under its job"
		}
	}
	_ = exec.Command("pkill", "-KILL", "-f", binary+" run ").Run()
	return "stage processes SIGKILLed"
}

// storm fails half of both sides' EC2 calls for five seconds.
func storm(p *poolSetup, status int, code string) {
	fault := func(_ string, _ url.Values, w http.ResponseWriter) bool {
		if rand.IntN(2) == 0 {
			return false
		}
		stack.EC2Error(w, status, code, code+" (soak storm)")
		return true
	}
	p.poolProxy.SetFault(fault)
	p.jobProxy.SetFault(fault)
	time.Sleep(5 * time.Second)
	p.poolProxy.SetFault(nil)
	p.jobProxy.SetFault(nil)
}

// busyWorker is a running instance that serves a job, or "".
func busyWorker() string {
	insts, err := st.InstancesByTag(context.Background(), workers.TagManagedBy, workers.ManagedByThis)
	if err != nil {
		return ""
	}
	var ids []string
	for _, in := range insts {
		state := ""
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == workers.TagPoolState {
				state = aws.ToString(tag.Value)
			}
		}
		if in.State.Name == "running" && (state == "" || state == workers.PoolClaimed) {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[rand.IntN(len(ids))]
}

// checkSoak checks the invariants, logs the summary and returns it for docs/soak.md.
func (p *poolSetup) checkSoak(jobs []soakJob, faults []soakFault, rss []int64) string {
	t := p.t
	want := map[string]string{}
	for _, k := range soakKinds {
		want[k.name] = k.want
	}
	outcomes := map[string]int{}
	users := map[string][]soakJob{}
	for _, j := range jobs {
		got := j.res.Status + "/" + j.res.FailureReason
		outcomes[j.kind+" → "+got]++
		hit := slices.ContainsFunc(faults, func(f soakFault) bool { return !f.to.Before(j.start) && !f.from.After(j.end) })
		switch {
		case got == want[j.kind]:
		case hit && (got == "failed/runner_system_failure" || j.kind == "cancel" || j.kind == "timeout"):
		default:
			t.Errorf("a %s job (cold %v, a fault during it: %v) ended %s, want %s\n%s", j.kind, j.cold, hit, got, want[j.kind], j.res.Log)
		}
		for _, m := range usingWorker.FindAllStringSubmatch(j.res.Log, -1) {
			users[m[1]] = append(users[m[1]], j)
		}
	}
	for id, js := range users {
		if len(js) > 1 {
			t.Errorf("worker %s served %d jobs (pool.max_builds is 1)", id, len(js))
		}
	}
	if len(rss) >= 4 {
		first, last := rss[0], rss[len(rss)-1]
		if last > first*3/2+16<<20 {
			t.Errorf("the pool's RSS grew from %d MB to %d MB", first>>20, last>>20)
		}
	}
	byFault := map[string]int{}
	for _, f := range faults {
		byFault[f.kind]++
	}
	t.Logf("soak: %d jobs; faults: %s; outcomes: %s", len(jobs), summary(byFault), summary(outcomes))
	return fmt.Sprintf("# The last soak\n\nWritten by `make soak` (`test/e2e/soak_test.go`) from a passing run on %s, %s long.\n"+
		"Every job reached a final state its kind and the faults it met allow, no worker served two jobs, nothing was\n"+
		"left running or behind, and the pool's memory did not grow.\n\n- Jobs: %d\n- Faults by kind: %s\n- Outcomes (kind → status/reason): %s\n",
		time.Now().UTC().Format("2006-01-02"), os.Getenv("EC2X_SOAK"), len(jobs), summary(byFault), summary(outcomes))
}

func summary(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// processRSS is a process's resident set in bytes (0 when it cannot be read).
func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
