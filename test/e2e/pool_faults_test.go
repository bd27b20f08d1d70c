//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-executor/ec2-executor/pool"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
	"github.com/ec2-executor/ec2-executor/workers"
)

// claimAll makes n claims at once, straight on the pool's socket as prepare does,
// and returns the instance each one got ("" for a miss or an error).
func (p *poolSetup) claimAll(prefix string, n int) []string {
	got := make([]string, n)
	spec := workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := workers.ClaimRequest{Job: workers.Job{Key: fmt.Sprintf("%s-%d", prefix, i)}, Spec: spec}
			a, err := workers.Claim(p.t.Context(), p.socket, req, 5*time.Second, 10*time.Second, func(string) {})
			if err == nil && a.Lease != nil {
				got[i] = a.Lease.InstanceID
			}
		}()
	}
	wg.Wait()
	return got
}

// endClaimed terminates what claims got, as the claiming jobs' cleanups would.
func endClaimed(t *testing.T, ids []string) {
	for _, id := range ids {
		if id != "" {
			_ = st.TerminateInstance(t.Context(), id)
		}
	}
}

func distinct(ids []string) (int, bool) {
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if seen[id] {
			return len(seen), false
		}
		seen[id] = true
	}
	return len(seen), true
}

func TestPoolThirtyClaimsAtOnceGetThirtyWorkers(t *testing.T) {
	p := newPool(t, "pool-30", 30, func(s *settings.Settings) {
		s.Pool.MaxInstances = 30 // nothing is refilled: the claims' workers are all there is
		s.Pool.PrepullImages = nil
	})
	p.start()
	p.waitIdle(30)
	got := p.claimAll("claim30", 30)
	n, ok := distinct(got)
	if n != 30 || !ok {
		t.Errorf("30 claims got %d distinct workers (no worker twice: %v): %v", n, ok, got)
	}
	p.note("fault", "30 claims at once on a pool of 30", fmt.Sprintf("%d distinct workers, none handed out twice", n))
	endClaimed(t, got)
	p.finish()
}

// TestPoolKilledWhileFillingAndMidClaimLosesAndDoublesNothing kills the pool with
// SIGKILL between EC2 launching a worker and the pool hearing of it, restarts it, then
// kills it again while claims are answered, and restarts it once more.
func TestPoolKilledWhileFillingAndMidClaimLosesAndDoublesNothing(t *testing.T) {
	p := newPool(t, "pool-kill", 3, func(s *settings.Settings) { s.Pool.PrepullImages = nil })
	p.poolProxy.OnAnswered(func(action string) {
		if action == "RunInstances" {
			_ = p.cmd.Process.Kill() // EC2 launched the batch; the pool never hears the answer
		}
	})
	p.start()
	_ = p.cmd.Wait()
	p.poolProxy.OnAnswered(nil)
	p.start()
	p.waitIdle(3)
	if runs := p.poolProxy.Counts()["RunInstances"]; runs != 1 {
		t.Errorf("RunInstances %d times for a pool of 3 (the batch the killed pool launched was not adopted?)", runs)
	}
	if n := poolInstances(t); n != 3 {
		t.Errorf("%d pool instances running, want 3", n)
	}
	p.note("fault", "pool SIGKILLed between RunInstances (one call for 3 workers) and saving their ids, restarted", "the 3 launched workers adopted by batch and launch index, no other RunInstances")

	var killed atomic.Bool
	p.poolProxy.OnAnswered(func(action string) {
		if action == "CreateTags" && killed.CompareAndSwap(false, true) { // a claim answered; others in flight
			_ = p.cmd.Process.Kill()
		}
	})
	got := p.claimAll("midclaim", 6)
	_ = p.cmd.Wait()
	p.poolProxy.OnAnswered(nil)
	p.start()
	p.waitIdle(3)
	after := p.status()
	for _, id := range after.Idle {
		if slices.Contains(got, id) {
			t.Errorf("worker %s, handed to a job before the crash, is offered again", id)
		}
	}
	more := p.claimAll("afterclaim", 3)
	all := append(slices.Clone(got), more...)
	if _, ok := distinct(all); !ok {
		t.Errorf("a worker was handed out twice across the crash: %v then %v", got, more)
	}
	p.note("fault", "pool SIGKILLed while answering claims, restarted", "no worker handed out twice, none lost")
	endClaimed(t, all)
	p.waitIdle(3)
	p.stop(syscall.SIGTERM)
	runs := p.poolProxy.Counts()["RunInstances"]
	p.start()
	p.waitIdle(3)
	if now := p.poolProxy.Counts()["RunInstances"]; now != runs {
		t.Errorf("the pool restarted after SIGTERM launched %d workers instead of adopting its idle ones", now-runs)
	}
	p.note("fault", "pool stopped with SIGTERM, restarted", "idle workers adopted after an SSH check, no RunInstances")
	p.finish()
}

// poolInstances counts running instances of ours that carry a pool state.
func poolInstances(t *testing.T) int {
	insts, err := st.InstancesByTag(context.Background(), workers.TagManagedBy, workers.ManagedByThis)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range insts {
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == workers.TagPoolState && in.State != nil && in.State.Name != "terminated" {
				n++
			}
		}
	}
	return n
}

func TestPoolCapIdleTimeAndForeignPeers(t *testing.T) {
	p := newPool(t, "pool-cap", 1, func(s *settings.Settings) {
		s.Pool.MaxInstances = 1
		s.Pool.ClaimTimeout = settings.Duration{Duration: 2 * time.Second}
		s.Pool.PrepullImages = nil
	})
	p.start()
	p.waitIdle(1)
	first := baseJob(8101)
	first.Script = []string{"sleep 15"}
	second := baseJob(8102)
	var res1 string
	done := make(chan struct{})
	go func() { defer close(done); r := p.job(first); res1 = r.Status }()
	for deadline := time.Now().Add(30 * time.Second); p.status().Workers[workers.PoolClaimed] != 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	res := p.job(second)
	<-done
	p.waitIdle(1) // refilled once the first job's worker is gone
	msg := "this manager's 1 workers are at pool.max_instances"
	contains(t, res.Log, "Waiting for a worker from the pool: all 1 workers allowed by pool.max_instances are busy", msg)
	if res.FailureReason != "runner_system_failure" || res1 != "success" {
		t.Errorf("at the cap: first job %s, second %s (%s)", res1, res.Status, res.FailureReason)
	}
	p.note("fault", "a claim at pool.max_instances (1) for longer than pool.claim_timeout (2s)", saw(res, "no worker within pool.claim_timeout (2s): "+msg))

	refused := claimAsNobody(t, p)
	if !strings.Contains(refused, "uid 65534") || strings.Contains(refused, "PRIVATE KEY") {
		t.Errorf("a foreign peer got %q", refused)
	}
	p.note("bad input", "a claim from a user other than root, the pool's and pool.socket_group (socket mode 0666)", "refused: \"uid 65534 (pid …) may not claim workers\", no key")

	p.stop(syscall.SIGTERM)
	p.waitIdleGone(t)
	p.finish()
}

// claimAsNobody claims as uid 65534 after opening the socket's mode to everyone: the
// pool must refuse by the peer's credentials alone.
func claimAsNobody(t *testing.T, p *poolSetup) string {
	if err := os.Chmod(p.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	script := `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"version":2,"claim":{"job":{"key":"intruder-1"},"spec":{"types":["t3.micro"],"market":"on-demand"}}}\n')
print(s.recv(65536).decode())`
	cmd := exec.Command("/usr/bin/python3", "-c", script, p.socket) // Debian's (cloud-init needs it), which nobody may run
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("claiming as nobody: %v\n%s", err, out)
	}
	return string(out)
}

// waitIdleGone restarts the pool with idle_count 0 and idle_time 1s and waits until
// idle_time ended its idle worker.
func (p *poolSetup) waitIdleGone(t *testing.T) {
	cfg := settingsFile(t, "idle-time.toml", p.poolProxy.URL, func(s *settings.Settings) {
		s.StateDir = filepath.Dir(p.socket)
		s.Pool.IdleCount = 0
		s.Pool.IdleTime = settings.Duration{Duration: time.Second}
		s.Pool.PollInterval = settings.Duration{Duration: 200 * time.Millisecond}
		s.Pool.MetricsListen = p.metrics
	})
	p.start(cfg)
	waitMetrics(t, p.metrics, `ec2x_pool_terminated_total{reason="idle_time"} 1`, `ec2x_pool_workers{state="idle"} 0`)
	p.note("fault", "an idle worker beyond pool.idle_count past pool.idle_time (1s)", "terminated, counted as idle_time")
}

// TestPoolAPIBudgetForTwentyJobs fills a pool of 20, serves 20 jobs at once and
// refills, counting the pool's EC2 calls by action and each job's own during its
// prepare (every job has its own proxy, so the counts cannot mix).
func TestPoolAPIBudgetForTwentyJobs(t *testing.T) {
	const n = 20
	p := newPool(t, "pool-budget", n, func(s *settings.Settings) { s.Pool.PrepullImages = nil })
	start := time.Now()
	p.start()
	p.waitIdle(n)
	filled := time.Since(start)
	results := make([]runnersim.Result, n)
	proxies := make([]*stack.Proxy, n)
	var wg sync.WaitGroup
	for i := range n {
		proxies[i] = stack.NewProxy()
		defer proxies[i].Close()
		cfg := settingsFile(t, fmt.Sprintf("pool-budget-job%d.toml", i), proxies[i].URL, func(s *settings.Settings) {
			s.StateDir = filepath.Dir(p.socket)
			s.Reap.FromCleanup = false
			s.Registry.DockerConfig = filepath.Join(st.Dir, "manager-docker", "config.json")
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := baseJob(8200 + i)
			job.Script = []string{"echo budget job"}
			results[i] = runnersim.Run(t.Context(), job, runnersim.Options{Binary: binary, Settings: cfg, Env: stack.Env(),
				GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond})
		}()
	}
	wg.Wait()
	hits := 0
	for i, res := range results {
		if res.Status != "success" {
			t.Errorf("job %d: %s (%s)\n%s", i, res.Status, res.FailureReason, res.Log)
		}
		if strings.Contains(res.Log, "from the pool (ready for") {
			hits++
			if calls := prepareCallsOn(proxies[i], res); len(calls) != 0 {
				t.Errorf("job %d's prepare made EC2 calls on a pool hit: %v", i, calls)
			}
		}
	}
	p.waitIdle(n)
	elapsed := time.Since(start)
	counts := p.poolProxy.Counts()
	t.Logf("pool's EC2 calls for filling %d, serving %d jobs (%d hits) and refilling, in %s (filled in %s): %v",
		n, n, hits, elapsed.Round(time.Second), filled.Round(time.Second), counts)
	if hits != n {
		t.Errorf("%d of %d jobs got a pooled worker", hits, n)
	}
	if runs := counts["RunInstances"]; runs > n/2 || runs < 2 {
		t.Errorf("RunInstances %d for %d workers, want at most one call per 4 workers", runs, 2*n)
	}
	if polls := int(elapsed / (200 * time.Millisecond)); counts["DescribeInstances"] > polls+n {
		t.Errorf("DescribeInstances %d in %s: more than one per poll", counts["DescribeInstances"], elapsed.Round(time.Second))
	}
	p.note("fault", "a pool of 20: fill, 20 jobs at once, refill", fmt.Sprintf("%d of %d jobs on pooled workers, no EC2 call on any job's prepare, fewer RunInstances calls than workers launched",
		hits, n))
	p.finish()
}

// prepareCallsOn counts the EC2 calls a job's own proxy saw during its prepare.
func prepareCallsOn(proxy *stack.Proxy, res runnersim.Result) map[string]int {
	for _, c := range res.Calls {
		if c.Stage == "prepare" {
			return proxy.CountsBetween(c.Start, c.Start.Add(c.Duration))
		}
	}
	return map[string]int{"(no prepare)": 1}
}

// waitState waits until the pool has n workers in state and none booting.
func (p *poolSetup) waitState(state string, n int) {
	p.t.Helper()
	var last pool.Status
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s, err := pool.QueryStatus(p.t.Context(), p.socket)
		if err == nil && s.Workers[state] == n && s.Workers[workers.PoolBooting] == 0 {
			return
		}
		last = s
	}
	p.t.Fatalf("the pool did not reach %d %s workers: %+v", n, state, last)
}

func TestPoolStartsAStoppedWorkerForAJob(t *testing.T) {
	p := newPool(t, "pool-stopped", 0, func(s *settings.Settings) { s.Pool.StoppedCount = 1 })
	p.start()
	p.waitState(workers.PoolStopped, 1)
	runs := p.poolProxy.Counts()["RunInstances"]
	job := baseJob(8301)
	job.Script = []string{"echo on a started worker"}
	res := p.job(job)
	contains(t, res.Log, "Started stopped worker i-", "on a started worker", "Job succeeded")
	if calls := p.prepareCalls(res); len(calls) != 0 {
		t.Errorf("the job's prepare made EC2 calls itself: %v", calls)
	}
	p.waitState(workers.PoolStopped, 1) // refilled in the background
	counts := p.poolProxy.Counts()
	if counts["StartInstances"] != 1 || counts["RunInstances"] != runs+1 || counts["StopInstances"] != 2 {
		t.Errorf("pool calls %v: want 1 StartInstances for the job, and 1 RunInstances and 1 StopInstances for the refill", counts)
	}
	p.note("fault", "a job on a pool of 0 idle and 1 stopped worker", saw(res, "Started stopped worker i-… in …")+
		", one StartInstances and no RunInstances for it, the stopped pool refilled")
	p.finish()
}

// TestPoolReusesAWipedWorkerWithinItsProject runs two jobs of one project on a
// worker that serves two (each worker has a dockerd of its own, so the wipe and the
// image cache are the worker's), then a job of another project.
func TestPoolReusesAWipedWorkerWithinItsProject(t *testing.T) {
	p := newPool(t, "pool-reuse", 1, func(s *settings.Settings) {
		s.Pool.MaxBuilds = 2
		s.Worker.DaemonOptions = map[string]any{"max-concurrent-downloads": 2}
		s.Docker.AllowedPullPolicies = []string{settings.PullAlways, settings.PullIfNotPresent}
	})
	p.start()
	p.waitIdle(1)
	first := baseJob(8401)
	first.Services = []runnersim.Service{{Name: stack.ServiceImage}}
	first.Script = []string{"echo first-job-was-here > leftover.txt", "ls leftover.txt"}
	res := p.job(first)
	worker := pooledWorker(t, res)
	contains(t, res.Log, "Job succeeded")
	contains(t, res.RunnerLog, "Returned worker "+worker+" to the pool, wiped (1 of 2 builds)")
	assertWiped(t, worker)

	second := baseJob(8402)
	second.Services = []runnersim.Service{{Name: stack.ServiceImage, PullPolicy: []string{settings.PullIfNotPresent}}}
	second.Script = []string{"test ! -e leftover.txt && echo no-leftover-from-the-first-job"}
	res = p.job(second)
	if got := pooledWorker(t, res); got != worker {
		t.Errorf("the second job of the project ran on %s, not on the used worker %s", got, worker)
	}
	contains(t, res.Log, "Using locally found image "+stack.ServiceImage+" (pull policy if-not-present)", "no-leftover-from-the-first-job", "Job succeeded")
	contains(t, res.RunnerLog, "The pool terminated worker "+worker+": it served pool.max_builds (2) jobs")

	other := baseJob(8403)
	other.ProjectID = 8
	res = p.job(other)
	if got := pooledWorker(t, res); got == worker {
		t.Errorf("a job of another project got the used worker %s", worker)
	}
	p.note("fault", "pool.max_builds 2: two jobs of a project, then one of another",
		"the second found none of the first job's files, containers, volumes or networks and its pulled image; the other project got another worker")
	p.finish()
}

// pooledWorker is the instance a job's log says it got from the pool.
func pooledWorker(t *testing.T, res runnersim.Result) string {
	t.Helper()
	_, rest, ok := strings.Cut(res.Log, "Using worker ")
	if !ok {
		t.Fatalf("the job did not get a pooled worker:\n%s", res.Log)
	}
	id, _, _ := strings.Cut(rest, " ")
	return id
}

// assertWiped checks the worker's own dockerd holds no container, volume or user
// network, and no file of its data holds the job's secrets.
func assertWiped(t *testing.T, id string) {
	t.Helper()
	host := st.Boot.PrivateDockerHost(id)
	if host == "" {
		t.Fatalf("worker %s has no dockerd of its own", id)
	}
	out, err := exec.Command("docker", "-H", host, "ps", "-aq").CombinedOutput()
	vols, verr := exec.Command("docker", "-H", host, "volume", "ls", "-q").CombinedOutput()
	nets, nerr := exec.Command("docker", "-H", host, "network", "ls", "--format", "{{.Name}}").CombinedOutput()
	if err != nil || verr != nil || nerr != nil {
		t.Fatalf("inspecting the worker's dockerd: %v %v %v", err, verr, nerr)
	}
	userNets := slices.DeleteFunc(strings.Fields(string(nets)), func(n string) bool { return n == "bridge" || n == "host" || n == "none" })
	if strings.TrimSpace(string(out)+string(vols)) != "" || len(userNets) > 0 {
		t.Errorf("left on the reused worker: containers %q, volumes %q, networks %v", out, vols, userNets)
	}
	scanWrittenFilesFor(t, filepath.Join(st.Dir, "boot", id))
}

// scanWrittenFilesFor fails for any file under dir that holds a job's secret.
func scanWrittenFilesFor(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		// containerd's bolt database keeps freed pages (a removed container's spec,
		// env included) until they are overwritten: a known limit of reuse, in
		// docs/pool.md. Every other file must be clean.
		if err != nil || d.IsDir() || !d.Type().IsRegular() || d.Name() == "meta.db" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, s := range secrets[:1] { // the job token; registry passwords are the stack's own
			if strings.Contains(string(data), s) {
				t.Errorf("%s on the reused worker still holds the last job's token", path)
			}
		}
		return nil
	})
}

// TestAManagerWhoseHeartbeatStopsHasItsWorkersReapedByAnother kills one manager's
// pool with SIGKILL; another manager's pool must end its workers within
// reap.manager_timeout (plus one reap.interval).
func TestAManagerWhoseHeartbeatStopsHasItsWorkersReapedByAnother(t *testing.T) {
	fast := func(s *settings.Settings) {
		s.Reap.HeartbeatInterval = settings.Duration{Duration: time.Second}
		s.Reap.ManagerTimeout = settings.Duration{Duration: 3 * time.Second}
		s.Reap.Interval = settings.Duration{Duration: time.Second}
		s.Pool.PrepullImages = nil
	}
	dying := newPool(t, "pool-dying", 1, func(s *settings.Settings) { fast(s); s.ManagerID = "stack-dying" })
	dying.start()
	dying.waitIdle(1)
	victim := dying.status().Idle[0]
	dying.stop(syscall.SIGKILL)
	killed := time.Now()
	living := newPool(t, "pool-living", 0, fast)
	living.start()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		insts, err := st.InstancesByTag(t.Context(), workers.TagManager, "stack-dying")
		if err == nil && len(insts) == 1 && insts[0].State.Name == "terminated" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead manager's worker %s still runs a minute after its pool died", victim)
		}
	}
	if took := time.Since(killed); took > 3*time.Second+time.Second+10*time.Second {
		t.Errorf("reaped %s after its manager died, want within reap.manager_timeout (3s) and a reap.interval (1s)", took)
	}
	living.note("fault", "a manager's pool SIGKILLed; another manager's pool runs (reap.manager_timeout 3s)", "its worker terminated within the timeout")
	living.finish()
}

// TestPoolKilledAroundStopAndStartFaults: the pool killed as StopInstances answers
// (before it hears the answer), a stopped worker EC2 cannot start again, and a
// reused worker whose wipe fails.
func TestPoolStopStartAndWipeFaults(t *testing.T) {
	p := newPool(t, "pool-stop-faults", 0, func(s *settings.Settings) {
		s.Pool.StoppedCount = 1
		s.Pool.PrepullImages = nil
	})
	p.poolProxy.OnAnswered(func(action string) {
		if action == "StopInstances" {
			_ = p.cmd.Process.Kill()
		}
	})
	p.start()
	_ = p.cmd.Wait()
	p.poolProxy.OnAnswered(nil)
	p.start()
	p.waitState(workers.PoolStopped, 1)
	if runs := p.poolProxy.Counts()["RunInstances"]; runs != 1 || poolInstances(t) != 1 {
		t.Errorf("after the restart: RunInstances %d, pool instances %d, want 1 and 1", runs, poolInstances(t))
	}
	p.note("fault", "pool SIGKILLed as StopInstances answers, restarted", "the worker kept as stopped, none launched again")

	p.poolProxy.SetFault(failN(10, "StartInstances", http.StatusInternalServerError, "InsufficientInstanceCapacity")) // every SDK attempt
	job := baseJob(8501)
	res := p.job(job)
	p.poolProxy.SetFault(nil)
	msg := "did not start"
	contains(t, res.Log, "The warm pool has no worker for this job (the stopped worker i-", msg, "launching a fresh worker", "Job succeeded")
	p.note("fault", "a stopped worker EC2 cannot start (`InsufficientInstanceCapacity` on StartInstances)",
		saw(res, "")+", the stopped worker terminated, the job launched cold")
	p.finish()
}

func TestPoolNeverOffersAWorkerWhoseWipeFailed(t *testing.T) {
	p := newPool(t, "pool-wipe-fails", 1, func(s *settings.Settings) {
		s.Pool.MaxBuilds = 3
		s.Pool.PrepullImages = nil
		s.Worker.DaemonOptions = map[string]any{"max-concurrent-downloads": 2}
	})
	p.start()
	p.waitIdle(1)
	job := baseJob(8502)
	job.Script = []string{"echo started", "sleep 8502"}
	duringScript(t, "8502", "sleep 8502", func(id string) { st.Boot.StopDockerd(id) })
	res := p.job(job)
	worker := pooledWorker(t, res)
	contains(t, res.RunnerLog, "Terminating the worker: its wipe failed")
	for _, id := range p.status().Idle {
		if id == worker {
			t.Errorf("the worker whose wipe failed, %s, is offered again", id)
		}
	}
	p.note("fault", "the wipe of a reused worker fails (its Docker daemon died)", "the worker terminated, never offered again")
	p.finish()
}

// TestAScheduleSwitchesThePoolAtTheMinute uses two schedule entries, one for now
// (2 idle) and one for the minute after it (0 idle, 2 stopped), and a worker claimed
// in between: at that minute the pool stops its idle workers and leaves the claimed
// one. Schedules match the real clock's minutes, so the idle entry covers the next
// minute too when this one has less than half a minute left (time for the pool to
// fill), and the test only ever waits on the pool's status. (The unit tests drive
// the same switch with an injected clock.)
func TestAScheduleSwitchesThePoolAtTheMinute(t *testing.T) {
	now := time.Now().UTC()
	idle := fmt.Sprintf("%d", now.Minute())
	switchAt := now.Add(time.Minute)
	if now.Second() > 30 {
		idle += fmt.Sprintf(",%d", switchAt.Minute())
		switchAt = switchAt.Add(time.Minute)
	}
	p := newPool(t, "pool-schedule", 2, func(s *settings.Settings) {
		s.Pool.PrepullImages = nil
		s.Pool.Schedule = []settings.PoolSchedule{
			{Periods: []string{idle + " * * * *"}, Timezone: "UTC", IdleCount: 2},
			{Periods: []string{fmt.Sprintf("%d * * * *", switchAt.Minute())}, Timezone: "UTC", IdleCount: 0, StoppedCount: 2},
		}
	})
	p.start()
	p.waitIdle(2)
	claimed := p.claimAll("scheduled", 1)[0]
	if claimed == "" {
		t.Fatal("no worker for the claim")
	}
	p.waitState(workers.PoolStopped, 2) // at switchAt
	st := p.status()
	if st.Workers[workers.PoolIdle] != 0 || st.Workers[workers.PoolClaimed] != 1 || st.StoppedCount != 2 {
		t.Errorf("after the switch: %+v", st)
	}
	if state, err := instanceState(t, claimed); err != nil || state != "running" {
		t.Errorf("the claimed worker %s is %s (%v), want it untouched", claimed, state, err)
	}
	p.note("fault", "a schedule switches the pool from 2 idle to 0 idle and 2 stopped at the minute", "the idle workers stopped, the claimed one untouched")
	endClaimed(t, []string{claimed})
	p.finish()
}

// instanceState is the state moto reports for one of our instances.
func instanceState(t *testing.T, id string) (string, error) {
	insts, err := st.InstancesByTag(t.Context(), workers.TagManagedBy, workers.ManagedByThis)
	for _, in := range insts {
		if *in.InstanceId == id {
			return string(in.State.Name), err
		}
	}
	return "missing", err
}
