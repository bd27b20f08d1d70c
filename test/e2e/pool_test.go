//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// poolSetup is one test's pool: its settings (the pool's own EC2 endpoint, and the
// jobs' through another proxy, so each side's calls can be counted) and process.
type poolSetup struct {
	t                   *testing.T
	rows                [][3]string // reliability rows, recorded once finish left nothing running
	poolCfg, jobCfg     string
	poolProxy, jobProxy *stack.Proxy
	socket, metrics     string
	cmd                 *exec.Cmd
	log                 *os.File
}

// newPool writes settings for a pool of idle workers sharing a fresh state directory
// with the jobs, edited by edit.
func newPool(t *testing.T, name string, idle int, edit func(*settings.Settings)) *poolSetup {
	t.Helper()
	p := &poolSetup{t: t, poolProxy: stack.NewProxy(), jobProxy: stack.NewProxy()}
	t.Cleanup(p.poolProxy.Close)
	t.Cleanup(p.jobProxy.Close)
	// A short state directory (not t.TempDir, named after the test): the socket's
	// path must fit a sockaddr_un's 108 bytes.
	dir, err := os.MkdirTemp("", "pool")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{filepath.Dir(dir), dir} { // other users' claims must reach the socket
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.metrics = freeAddr(t)
	both := func(s *settings.Settings) {
		s.StateDir = dir
		s.Reap.FromCleanup = false
		s.Pool.IdleCount = idle
		s.Pool.PollInterval = settings.Duration{Duration: 200 * time.Millisecond}
		s.Pool.LaunchesPerSecond = 2
		s.Pool.MetricsListen = p.metrics
		s.Pool.PrepullImages = []string{stack.JobImage}
		s.Registry.DockerConfig = filepath.Join(st.Dir, "manager-docker", "config.json")
		if edit != nil {
			edit(s)
		}
	}
	p.poolCfg = settingsFile(t, name+"-pool.toml", p.poolProxy.URL, both)
	p.jobCfg = settingsFile(t, name+"-jobs.toml", p.jobProxy.URL, both)
	p.socket = filepath.Join(dir, "pool.sock")
	return p
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs `ec2-executor pool` with cfg (the pool's settings unless given).
func (p *poolSetup) start(cfg ...string) {
	p.t.Helper()
	c := p.poolCfg
	if len(cfg) > 0 {
		c = cfg[0]
	}
	log, err := os.OpenFile(filepath.Join(p.t.TempDir(), "pool.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.log = log
	p.cmd = exec.Command(binary, "--config", c, "pool")
	p.cmd.Env = append(os.Environ(), stack.Env()...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { p.stop(syscall.SIGKILL) })
}

// stop signals the pool and waits for it.
func (p *poolSetup) stop(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait()
	b, _ := os.ReadFile(p.log.Name())
	p.t.Logf("pool log:\n%s", b)
	p.log.Close()
}

// status asks the pool for its counts, or fails the test.
func (p *poolSetup) status() pool.Status {
	p.t.Helper()
	s, err := pool.QueryStatus(p.t.Context(), p.socket)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// waitIdle waits until the pool has n idle workers and nothing booting.
func (p *poolSetup) waitIdle(n int) {
	p.t.Helper()
	var last pool.Status
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s, err := pool.QueryStatus(p.t.Context(), p.socket)
		if err == nil && s.Workers[workers.PoolIdle] == n && s.Workers[workers.PoolBooting] == 0 {
			return
		}
		last = s
	}
	p.t.Fatalf("the pool did not reach %d idle workers: %+v", n, last)
}

// job runs a job through the runner simulator on the jobs' settings and checks no
// secret escaped (the pool's idle workers run on, so moto is checked at the end).
func (p *poolSetup) job(job runnersim.Job) runnersim.Result {
	p.t.Helper()
	res := runnersim.Run(p.t.Context(), job, runnersim.Options{Binary: binary, Settings: p.jobCfg, Env: stack.Env(),
		GracefulKillTimeout: 30 * time.Second, PrepareRetryInterval: 200 * time.Millisecond})
	p.t.Logf("job log:\n%s\nrunner log (cleanup):\n%s", res.Log, res.RunnerLog)
	for _, s := range secrets {
		if strings.Contains(res.Log+res.RunnerLog, s) {
			p.t.Errorf("secret %q... appeared in the output", s[:4])
		}
	}
	return res
}

// finish stops the pool with terminate_on_shutdown, then reaps with no grace period
// (workers claimed by jobs that never ran, as when a pool died mid-claim), so the
// test leaves nothing running.
func (p *poolSetup) finish() {
	p.t.Helper()
	p.stop(syscall.SIGKILL)
	p.assertNoneLost()
	dir := filepath.Dir(p.socket)
	final := settingsFile(p.t, "final-pool.toml", p.poolProxy.URL, func(s *settings.Settings) {
		s.StateDir = dir
		s.Pool.IdleCount = 0
		s.Pool.TerminateOnShutdown = true
		s.Pool.PollInterval = settings.Duration{Duration: 200 * time.Millisecond}
		s.Reap.GracePeriod = settings.Duration{}
	})
	p.start(final)
	p.waitPolled() // it adopted its workers: SIGTERM terminates them
	p.stop(syscall.SIGTERM)
	reap := exec.Command(binary, "--config", final, "reap")
	reap.Env = append(os.Environ(), stack.Env()...)
	out, err := reap.CombinedOutput()
	p.t.Logf("reap after the pool: %v\n%s", err, out)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if running, _ := st.RunningOurs(context.Background()); len(running) == 0 {
			break
		}
	}
	assertNoneRunning(p.t)
	for _, r := range p.rows {
		record(p.t, r[0], r[1], r[2])
	}
}

// waitPolled waits until the pool has learned its workers' states from EC2 once
// (and so adopted those it had), or fails the test.
func (p *poolSetup) waitPolled() {
	p.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s, err := pool.QueryStatus(p.t.Context(), p.socket); err == nil && !s.LastPoll.IsZero() {
			return
		}
	}
	p.t.Fatal("the pool never finished a poll")
}

// assertNoneLost checks, before anything is cleaned up, that every instance of ours
// still running is one the pool's records hold (by id, or by the batch of a launch
// it died saving): a worker that no job and no record accounts for is lost.
func (p *poolSetup) assertNoneLost() {
	p.t.Helper()
	var book struct {
		Workers map[string]struct {
			Batch string `json:"batch"`
			Lease struct {
				InstanceID string `json:"instance_id"`
			} `json:"lease"`
		} `json:"workers"`
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(p.socket), "pool", "workers.json")); err == nil {
		if err := json.Unmarshal(b, &book); err != nil {
			p.t.Fatalf("the pool's records: %v", err)
		}
	}
	held := map[string]bool{}
	for _, w := range book.Workers {
		held[w.Lease.InstanceID], held[w.Batch] = true, true
	}
	insts, err := st.InstancesByTag(context.Background(), workers.TagManagedBy, workers.ManagedByThis)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, in := range insts {
		if n := in.State.Name; n == "terminated" || n == "shutting-down" {
			continue
		}
		id, batch := aws.ToString(in.InstanceId), ""
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == workers.TagJobKey {
				batch = aws.ToString(tag.Value)
			}
		}
		if !held[id] && !held[batch] {
			p.t.Errorf("instance %s (job key %s) runs, and neither a job nor the pool's records account for it", id, batch)
		}
	}
}

// note keeps a reliability row until finish has ended the pool's workers, so the
// table's "left running" column says what the test left, not what a live pool held.
func (p *poolSetup) note(kind, name, saw string) { p.rows = append(p.rows, [3]string{kind, name, saw}) }

// prepareCalls counts the EC2 calls the jobs' side made during the job's prepare.
func (p *poolSetup) prepareCalls(res runnersim.Result) map[string]int {
	for _, c := range res.Calls {
		if c.Stage == "prepare" {
			return p.jobProxy.CountsBetween(c.Start, c.Start.Add(c.Duration))
		}
	}
	p.t.Fatal("no prepare call")
	return nil
}

func TestPoolHandsAJobAReadyWorkerWithoutAnEC2Call(t *testing.T) {
	p := newPool(t, "pool-hit", 2, nil)
	p.start()
	p.waitIdle(2)
	job := baseJob(8001)
	job.Script = []string{"echo on a pooled worker"}
	res := p.job(job)
	contains(t, res.Log, "from the pool (ready for", "on a pooled worker", "Job succeeded")
	if calls := p.prepareCalls(res); len(calls) != 0 {
		t.Errorf("prepare on a pool hit made EC2 calls: %v", calls)
	}
	p.waitIdle(2) // replaced as soon as it was claimed
	waitMetrics(t, p.metrics, `ec2x_pool_claims_total{result="hit"} 1`, `ec2x_ec2_calls_total{action="RunInstances",code=""} 2`,
		`ec2x_pool_workers{state="idle"} 2`, `ec2x_pool_workers{state="claimed"} 0`, `ec2x_pool_terminated_total{reason="job_done"} 1`,
		`ec2x_pool_launch_phase_seconds_count{phase="images_pulled"} 3`)
	p.note("fault", "a job on a pool of 2", saw(res, "")+", prepare made no EC2 call, pool back to 2 idle")

	p.stop(syscall.SIGTERM) // idle workers stay for the next start
	cold := baseJob(8002)
	cold.Script = []string{"echo on a cold worker"}
	res = p.job(cold)
	contains(t, res.Log, "[WARN]  ec2-executor: The warm pool did not answer on "+p.socket+"; launching a fresh worker", "on a cold worker", "Job succeeded")
	p.note("fault", "a job while no pool runs", saw(res, "The warm pool did not answer on …; launching a fresh worker"))
	p.finish()
}

// waitMetrics waits until /metrics shows every line wanted.
func waitMetrics(t *testing.T, addr string, want ...string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got, _ = scrape(addr) // not listening yet, at first
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(got, w) }) {
			return
		}
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
}

func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestPoolIdleFollowsARampOfJobs: with pool.scale_factor the idle workers follow
// the jobs running (here three cold launches, since the pool starts empty), and go
// again after pool.idle_time once the jobs are done.
func TestPoolIdleFollowsARampOfJobs(t *testing.T) {
	p := newPool(t, "scale", 0, func(s *settings.Settings) {
		s.Pool.ScaleFactor, s.Pool.ScaleFactorLimit = 1, 3
		s.Pool.IdleTime = settings.Duration{Duration: 2 * time.Second}
	})
	p.start()
	waitMetrics(t, p.metrics, "ec2x_pool_idle_desired 0")
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			job := baseJob(8201 + i)
			job.Script = []string{"sleep 25"}
			if res := p.job(job); res.Status != "success" {
				t.Errorf("job %d ended %s (%s)", job.ID, res.Status, res.FailureReason)
			}
		})
	}
	waitMetrics(t, p.metrics, "ec2x_pool_idle_desired 3", `ec2x_pool_workers{state="idle"} 3`)
	wg.Wait()
	waitMetrics(t, p.metrics, "ec2x_pool_idle_desired 0", `ec2x_pool_workers{state="idle"} 0`, `ec2x_pool_terminated_total{reason="idle_time"} 3`)
	p.finish()
}
