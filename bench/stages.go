package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ec2-executor/ec2-executor/stages"
	"github.com/ec2-executor/ec2-executor/test/runnersim"
	"github.com/ec2-executor/ec2-executor/test/stack"
)

// stageScript is the one-line script every way of running a stage is given.
const stageScript = "echo stage-ok\n"

// outputBytes is what the output benchmark's script prints: 200 MB of 100-byte lines.
const outputBytes = 200_000_000

var outputScript = fmt.Sprintf("yes %s | head -c %d\n", strings.Repeat("x", 99), outputBytes)

// way is one way of running a script in the job's build container.
type way struct {
	name, note string
	cmd        func(script string) *exec.Cmd
}

// liveJob is a job held between its last stage and its cleanup, with everything a
// benchmark needs to run more stages against it the driver's way and its peers' ways.
type liveJob struct {
	binary, dir, scriptDir string
	holder                 int           // the job's holder process
	holderCPU              time.Duration // its CPU for the job's own stages, before the benchmark's
	env                    []string
	state                  stages.State
	sshBin                 string // a directory with an ssh that knows the worker's key
	peer                   string // a stopped container for the docker executor's way
}

// ways are the driver's run stage and the three ways a user could do the same.
func (j *liveJob) ways() []way {
	docker := func(host string, args ...string) *exec.Cmd {
		c := exec.Command("docker", append([]string{"-H", host}, args...)...)
		c.Env = append(os.Environ(), "PATH="+j.sshBin+":"+os.Getenv("PATH"))
		return c
	}
	local := "unix:///var/run/docker.sock"
	sshHost := "ssh://" + j.state.SSHUser + "@" + j.state.Address
	return []way{
		{"ec2-executor `run` (the driver, as gitlab-runner calls it)", "a new process per stage, through the job's held SSH connection, exec into the running container", func(script string) *exec.Cmd {
			path := filepath.Join(j.scriptDir, fmt.Sprintf("s%d", time.Now().UnixNano()))
			_ = os.WriteFile(path, []byte(script), 0o700)
			c := exec.Command(j.binary, "run", path, "build_script")
			c.Dir, c.Env = j.dir, j.env
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			return c
		}},
		{"`docker exec -i` on the worker's own daemon", "the floor: no SSH, no new container", func(string) *exec.Cmd {
			return docker(local, "exec", "-i", j.state.BuildContainer, "sh")
		}},
		{"`DOCKER_HOST=ssh://…` `docker exec -i`", "a hand-written custom executor: ssh + `docker system dial-stdio` per call", func(string) *exec.Cmd {
			return docker(sshHost, "exec", "-i", j.state.BuildContainer, "sh")
		}},
		{"`docker start -a -i` of a stopped container on the job network", "the docker executor's way: one container start per stage", func(string) *exec.Cmd {
			return docker(local, "start", "-a", "-i", j.peer)
		}},
	}
}

// measured is how long one run took, what it cost the manager and what it printed.
type measured struct {
	wall, cpu time.Duration
	out       int64
}

// timeRun runs c with script on stdin, counting its stdout (which must contain want).
func timeRun(c *exec.Cmd, script, want string) (measured, error) {
	var head bytes.Buffer
	cnt := &counter{keep: &head}
	var errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(script), cnt, &errb
	start := time.Now()
	if err := c.Run(); err != nil {
		return measured{}, fmt.Errorf("%s: %w: %s", strings.Join(c.Args, " "), err, tail(errb.String()))
	}
	m := measured{wall: time.Since(start), out: cnt.n}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if !strings.Contains(head.String(), want) {
		return m, fmt.Errorf("%s printed %q, not %q", c.Args[0], tail(head.String()), want)
	}
	return m, nil
}

// counter counts what is written and keeps the first KiB.
type counter struct {
	n    int64
	keep *bytes.Buffer
}

func (c *counter) Write(p []byte) (int, error) {
	if room := 1024 - c.keep.Len(); room > 0 {
		c.keep.Write(p[:min(room, len(p))])
	}
	c.n += int64(len(p))
	return len(p), nil
}

func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

// holdJob runs a job and, before its cleanup, hands it to use.
func holdJob(ctx context.Context, s *stack.Stack, binary, cfg string, id int, use func(*liveJob) error) (runnersim.Result, error) {
	var useErr error
	job := runnersim.Job{ID: id, ProjectID: 7, PipelineID: 900, Name: "bench", Image: stack.JobImage, Token: "bench-job-token",
		Script: []string{"echo held"}}
	res := runnersim.Run(ctx, job, runnersim.Options{Binary: binary, Settings: cfg, Env: stack.Env(),
		PrepareRetryInterval: 200 * time.Millisecond,
		BeforeCleanup: func(env []string, dir string) {
			j, err := newLiveJob(ctx, s, binary, env, dir)
			if err != nil {
				useErr = err
				return
			}
			defer j.close()
			useErr = use(j)
		}})
	if res.Status != "success" {
		return res, fmt.Errorf("job %d ended %s (%s):\n%s", id, res.Status, res.FailureReason, res.Log)
	}
	return res, useErr
}

func newLiveJob(ctx context.Context, s *stack.Stack, binary string, env []string, dir string) (*liveJob, error) {
	stateDir := filepath.Join(s.Dir, "state", "jobs")
	files, _ := filepath.Glob(filepath.Join(stateDir, "*.json"))
	if len(files) != 1 {
		return nil, fmt.Errorf("want one job state in %s, found %d", stateDir, len(files))
	}
	st, err := stages.Store{Dir: stateDir}.Load(strings.TrimSuffix(filepath.Base(files[0]), ".json"))
	if err != nil {
		return nil, err
	}
	j := &liveJob{binary: binary, dir: dir, env: env, state: st, scriptDir: filepath.Join(dir, "bench-scripts")}
	if j.holder, err = holderOf(st.JobKey); err != nil {
		return nil, err
	}
	j.holderCPU, _ = procUsage(j.holder)
	if err := os.MkdirAll(j.scriptDir, 0o700); err != nil {
		return nil, err
	}
	if err := j.sshSetup(); err != nil {
		return nil, err
	}
	net, err := output(exec.CommandContext(ctx, "docker", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", st.BuildContainer))
	if err != nil {
		return nil, err
	}
	j.peer, err = output(exec.CommandContext(ctx, "docker", "create", "-i", "--log-driver", "none", "--network", net,
		"--label", "com.ec2-executor.job="+st.JobKey, stack.JobImage, "sh"))
	return j, err
}

// sshSetup writes the worker's key and pinned host key where a wrapped ssh finds
// them, as an operator's ~/.ssh would hold them for DOCKER_HOST=ssh://.
func (j *liveJob) sshSetup() error {
	j.sshBin = filepath.Join(j.dir, "ssh-bin")
	if err := os.MkdirAll(j.sshBin, 0o700); err != nil {
		return err
	}
	key, known := filepath.Join(j.sshBin, "id"), filepath.Join(j.sshBin, "known_hosts")
	host, port, _ := strings.Cut(j.state.Address, ":")
	if err := os.WriteFile(key, []byte(j.state.ClientKey), 0o600); err != nil {
		return err
	}
	entry := fmt.Sprintf("[%s]:%s", host, port) // OpenSSH's form for a port other than 22
	if port == "22" {
		entry = host
	}
	if err := os.WriteFile(known, []byte(entry+" "+j.state.HostKey+"\n"), 0o600); err != nil {
		return err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/ssh -F none -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes \"$@\"\n", key, known)
	return os.WriteFile(filepath.Join(j.sshBin, "ssh"), []byte(wrapper), 0o700)
}

func (j *liveJob) close() {
	_ = exec.Command("docker", "rm", "-f", j.peer).Run()
}

func output(c *exec.Cmd) (string, error) {
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// wayResult is one way's runs.
type wayResult struct {
	way  way
	runs []measured
}

// measureWays runs script n times each way, interleaved so that drift in the
// machine's load falls on every way alike.
func measureWays(j *liveJob, script, want string, n int) ([]wayResult, error) {
	ways := j.ways()
	res := make([]wayResult, len(ways))
	for i := range ways {
		res[i].way = ways[i]
	}
	for range n {
		for i, w := range ways {
			before, _ := procUsage(j.holder)
			m, err := timeRun(w.cmd(script), script, want)
			if err != nil {
				return nil, err
			}
			if i == 0 { // the driver's stage: its process and the holder's forwarding
				after, _ := procUsage(j.holder)
				m.cpu += after - before
			}
			res[i].runs = append(res[i].runs, m)
		}
	}
	return res, nil
}

// median of one measure over runs.
func medianOf(runs []measured, f func(measured) time.Duration) time.Duration {
	ds := make([]time.Duration, len(runs))
	for i, r := range runs {
		ds[i] = f(r)
	}
	return series{runs: ds}.median()
}

func wall(m measured) time.Duration { return m.wall }
func cpu(m measured) time.Duration  { return m.cpu }

// stageTable is the run-stage comparison: each way's median against the floor.
func stageTable(res []wayResult, n int) string {
	var b strings.Builder
	floor := medianOf(res[1].runs, wall)
	fmt.Fprintf(&b, "%d runs each way, interleaved, of the one-line script `%s` in the job's build container.\n\n", n, strings.TrimSpace(stageScript))
	b.WriteString("| way | median | fastest | slowest | ratio to `docker exec` | manager CPU (median) | note |\n|---|---|---|---|---|---|---|\n")
	for _, r := range res {
		ds := make([]time.Duration, len(r.runs))
		for i, m := range r.runs {
			ds[i] = m.wall
		}
		sr := series{runs: ds}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %s | %s |\n", r.way.name, ms(sr.median()), ms(sr.min()), ms(sr.max()),
			float64(sr.median())/float64(floor), ms(medianOf(r.runs, cpu)), r.way.note)
	}
	ours := medianOf(res[0].runs, wall)
	goal := "met"
	if float64(ours) > 1.5*float64(floor) {
		goal = "missed"
	}
	fmt.Fprintf(&b, "\nGoal: within 1.5× of `docker exec` on the worker's own daemon: **%s** (%.2f×). Against the docker executor's own way the driver's stage is %.1f× faster.\n",
		goal, float64(ours)/float64(floor), float64(medianOf(res[3].runs, wall))/float64(ours))
	return b.String()
}

// outputTable is the 200 MB comparison: each way's throughput against Docker's attach.
func outputTable(res []wayResult, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d runs each way of a script printing %d MB (`%s`); the bytes are counted as they arrive.\n\n", n, outputBytes/1_000_000, strings.TrimSpace(outputScript[:20])+"… | head -c …")
	b.WriteString("| way | median MB/s | slowest MB/s | ratio to `docker start -a -i` | manager CPU (median) |\n|---|---|---|---|---|\n")
	rate := func(d time.Duration) float64 { return float64(outputBytes) / 1e6 / d.Seconds() }
	attach := rate(medianOf(res[3].runs, wall))
	for _, r := range res {
		ds := make([]time.Duration, len(r.runs))
		for i, m := range r.runs {
			ds[i] = m.wall
		}
		sr := series{runs: ds}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f | %s |\n", r.way.name, rate(sr.median()), rate(sr.max()), rate(sr.median())/attach, ms(medianOf(r.runs, cpu)))
	}
	ours := rate(medianOf(res[0].runs, wall))
	goal := "met"
	if ours < 0.9*attach {
		goal = "missed"
	}
	fmt.Fprintf(&b, "\nGoal: at least 0.9× of Docker's own attach stream: **%s** (%.2f×).\n", goal, ours/attach)
	return b.String()
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// holderOf finds the pid of the job's holder (`ec2-executor ... hold <key>`).
func holderOf(key string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) >= 2 && args[len(args)-2] == "hold" && args[len(args)-1] == key {
			var pid int
			_, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid)
			return pid, err
		}
	}
	return 0, fmt.Errorf("no holder process for job %s: prepare starts one", key)
}
