package runnersim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
)

// Options say how the simulated runner is configured.
type Options struct {
	Binary   string   // the driver
	Settings string   // EC2_EXECUTOR_CONFIG for the driver
	Env      []string // extra process environment (AWS test credentials)
	// Runner timeouts; zero means the runner's defaults (600 s, 10 s, 3 s).
	GracefulKillTimeout, ForceKillTimeout, PrepareRetryInterval time.Duration
	// Log receives the job log as it is written (in addition to Result.Log).
	Log io.Writer
	// ForgetLog leaves Result.Log empty, for jobs whose output is too big to keep.
	ForgetLog bool
	// Runner175 speaks gitlab-runner 17.5's side of the contract instead of HEAD's:
	// no BUILD_EXIT_CODE_FILE (a build failure always reads as exit code 1) and no
	// variables in CUSTOM_ENV_CI_JOB_SERVICES.
	Runner175 bool
	// API is the stand-in jobs API the runner reports to: its URL is the runner's url
	// (CI_SERVER_URL, the artifact uploads' address) and it learns the job's token.
	// Without it, jobs upload no artifacts, as a runner with no url.
	API *gitlabapi.Server
	// BeforeCleanup, when set, is called once the job's stages are done and before
	// cleanup, with the environment and working directory of a run stage, so a
	// benchmark can drive more stages against the live job.
	BeforeCleanup func(env []string, dir string)
}

// Result is how the job ended and what it printed.
type Result struct {
	Status          string // success, failed, canceled
	FailureReason   string // script_failure, runner_system_failure, job_execution_timeout
	ExitCode        int    // the script's exit code for script_failure
	PrepareAttempts int
	Calls           []Call
	Log             string // the job log
	RunnerLog       string // what cleanup printed (runner log, not job log)
	JobKeys         []string
}

type run struct {
	opt  Options
	job  Job
	tmp  string
	log  io.Writer
	buf  lockedBuffer
	rlog lockedBuffer
	res  Result
	cfg  configOutput
	// cancelRoot ends the job's context (cause errCanceled or DeadlineExceeded);
	// cancelScript ends only build_script's.
	cancelRoot   context.CancelCauseFunc
	cancelScript context.CancelFunc
}

// errCanceled is the cause of a job context ended by a cancel from GitLab.
var errCanceled = errors.New("canceled externally (UI, API)")

// Run drives one job through the driver and returns its result.
func Run(ctx context.Context, job Job, opt Options) Result {
	if opt.GracefulKillTimeout == 0 {
		opt.GracefulKillTimeout = 600 * time.Second
	}
	if opt.ForceKillTimeout == 0 {
		opt.ForceKillTimeout = 10 * time.Second
	}
	if opt.PrepareRetryInterval == 0 {
		opt.PrepareRetryInterval = 3 * time.Second
	}
	if job.Timeout == 0 {
		job.Timeout = time.Hour
	}
	if opt.API != nil {
		job.serverURL = opt.API.URL
		opt.API.Expect(job.ID, job.Token)
	}
	r := &run{opt: opt, job: job}
	r.log = &r.buf
	switch {
	case opt.Log != nil && opt.ForgetLog:
		r.log = opt.Log
	case opt.Log != nil:
		r.log = io.MultiWriter(&r.buf, opt.Log)
	}
	fmt.Fprintf(r.log, "Running with gitlab-runner 17.5.0 (runnersim)\n")
	r.execute(ctx)
	r.res.Log, r.res.RunnerLog = r.buf.String(), r.rlog.String()
	return r.res
}

func (r *run) execute(ctx context.Context) {
	timed, cancel := context.WithTimeout(ctx, r.job.Timeout)
	defer cancel()
	rootCtx, cancelRoot := context.WithCancelCause(timed)
	defer cancelRoot(nil)
	r.cancelRoot, r.cancelScript = cancelRoot, func() {}
	if !r.prepare(rootCtx) {
		return
	}
	defer r.cleanup()
	r.stages(rootCtx)
	if r.opt.BeforeCleanup != nil {
		r.opt.BeforeCleanup(r.env(r.cfg.JobEnv, r.res.Status), r.tmp)
	}
}

// prepare runs config + prepare up to 3 times; each failed attempt is cleaned up and
// the next one starts with a fresh temp dir and response file.
func (r *run) prepare(ctx context.Context) bool {
	for attempt := 1; attempt <= 3; attempt++ {
		r.res.PrepareAttempts = attempt
		if attempt > 1 {
			fmt.Fprintf(r.log, "WARNING: Preparation failed; will be retried in %s ...\n", r.opt.PrepareRetryInterval)
			time.Sleep(r.opt.PrepareRetryInterval)
		}
		if err := r.newTempDir(); err != nil {
			fmt.Fprintf(r.log, "ERROR: %v\n", err)
			continue
		}
		o := r.prepareAttempt(ctx)
		if o.ok {
			return true
		}
		r.cleanup()
		if r.ended(ctx) {
			return false
		}
		if o.build {
			r.fail("script_failure", o.code, fmt.Sprintf(": exit code %d", o.code))
			return false
		}
		fmt.Fprintf(r.log, "ERROR: Preparation failed: %s\n", o.reason)
	}
	r.fail("runner_system_failure", 0, " (system failure): preparation failed")
	return false
}

func (r *run) prepareAttempt(ctx context.Context) outcome {
	var stdout bytes.Buffer
	c := r.execDriver(ctx, r.env(nil, "running"), &stdout, r.log, "config")
	if o := r.judge(c); !o.ok {
		return o
	}
	cfg, err := parseConfig(stdout.Bytes())
	if err != nil {
		return outcome{reason: err.Error()}
	}
	if cfg.BuildsDir == "" {
		return outcome{reason: "the builds_dir is not configured"}
	}
	r.cfg = cfg
	r.res.JobKeys = append(r.res.JobKeys, cfg.JobEnv["EC2_EXECUTOR_JOB_KEY"])
	if cfg.Driver != nil {
		fmt.Fprintf(r.log, "Using Custom executor with driver %s %s...\n", cfg.Driver.Name, cfg.Driver.Version)
	}
	defer r.arm("prepare")()
	return r.judge(r.execDriver(ctx, r.env(cfg.JobEnv, "running"), r.log, r.log, "prepare"))
}

// arm schedules the job's interrupt when stage is the one it names; the returned
// func disarms it when the stage ends first.
func (r *run) arm(stage string) (disarm func()) {
	in := r.job.Interrupt
	if in.Stage != stage {
		return func() {}
	}
	t := time.AfterFunc(in.After, func() {
		switch {
		case in.Timeout:
			r.cancelRoot(context.DeadlineExceeded)
		case stage == "build_script":
			r.cancelScript()
		default:
			r.cancelRoot(errCanceled)
		}
	})
	return func() { t.Stop() }
}

// ended reports whether the job's context is over, and if so records why: a cancel
// makes the job canceled, the timeout a job_execution_timeout failure.
func (r *run) ended(rootCtx context.Context) bool {
	if rootCtx.Err() == nil {
		return false
	}
	if errors.Is(context.Cause(rootCtx), errCanceled) {
		r.canceled()
		return true
	}
	r.fail("job_execution_timeout", 0, ": execution took longer than the job timeout")
	return true
}

// stages runs the run_exec stages in the runner's order. Once the job's context is
// over, every later stage is skipped (stage returns at once) and only cleanup runs.
func (r *run) stages(rootCtx context.Context) {
	pre := []string{"prepare_script", "get_sources"}
	if r.job.CacheKey != "" {
		pre = append(pre, "restore_cache")
	}
	for _, st := range pre {
		if o := r.stage(rootCtx, st, "running"); !o.ok {
			if !r.ended(rootCtx) {
				r.failFrom(o)
				r.stage(rootCtx, "cleanup_file_variables", "failed")
			}
			return
		}
	}
	scriptCtx, cancelScript := context.WithCancel(rootCtx)
	defer cancelScript()
	r.cancelScript = cancelScript
	o := r.stage(scriptCtx, "build_script", "running")
	status := "success"
	switch {
	case r.ended(rootCtx):
		return
	case scriptCtx.Err() != nil:
		fmt.Fprintln(r.log, "WARNING: script canceled externally (UI, API)")
		status = "canceled"
	case !o.ok:
		status = "failed"
	}
	if len(r.job.AfterScript) > 0 {
		r.stage(rootCtx, "after_script", status)
	}
	r.archiveAndUpload(rootCtx, status)
	r.stage(rootCtx, "cleanup_file_variables", status)
	if r.ended(rootCtx) {
		return
	}
	switch status {
	case "canceled":
		r.canceled()
	case "failed":
		r.failFrom(o)
	default:
		r.res.Status = "success"
		fmt.Fprintln(r.log, "Job succeeded")
	}
}

// archiveAndUpload runs the cache and artifact stages the job's result calls for;
// their failures only matter to a job that succeeded, which this simulator ignores.
func (r *run) archiveAndUpload(ctx context.Context, status string) {
	suffix := "on_success"
	if status != "success" {
		suffix = "on_failure"
	}
	if r.job.CacheKey != "" {
		name := "archive_cache"
		if status != "success" {
			name = "archive_cache_on_failure"
		}
		r.stage(ctx, name, status)
	}
	if len(r.job.Artifacts) > 0 && r.job.serverURL != "" {
		r.stage(ctx, "upload_artifacts_"+suffix, status)
	}
}

func (r *run) stage(ctx context.Context, name, status string) outcome {
	if ctx.Err() != nil {
		return outcome{reason: "context done"}
	}
	fmt.Fprintf(r.log, "section_start:%s\n", name)
	dir := filepath.Join(r.tmp, "script"+strconv.Itoa(len(r.res.Calls)))
	path := filepath.Join(dir, "script")
	projectDir := r.projectDir()
	vars := append(r.job.allVariables(projectDir), Variable{Key: "CI_JOB_STATUS", Value: status, Public: true})
	body := script(vars, stageBody(name, r.cfg.Hostname, r.job))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return outcome{reason: err.Error()}
	}
	if err := os.WriteFile(path, []byte(body), 0o700); err != nil {
		return outcome{reason: err.Error()}
	}
	_ = os.Remove(r.exitCodeFile())
	defer r.arm(name)()
	call := r.execDriver(ctx, r.env(r.cfg.JobEnv, status), r.log, r.log, "run", path, name)
	if n := len(r.res.Calls); n > 0 && r.res.Calls[n-1].Stage == name {
		r.res.Calls[n-1].Body = body
	}
	o := r.judge(call)
	fmt.Fprintf(r.log, "section_end:%s\n", name)
	return o
}

// cleanup always runs, on a background context: stdout and stderr go to the runner's
// log, never the job log.
func (r *run) cleanup() {
	r.execDriver(context.Background(), r.env(r.cfg.JobEnv, r.res.Status), &r.rlog, &r.rlog, "cleanup")
	_ = os.RemoveAll(r.tmp)
}

func (r *run) canceled() {
	r.res.Status, r.res.FailureReason = "canceled", ""
	fmt.Fprintln(r.log, "ERROR: Job failed: canceled")
}

func (r *run) failFrom(o outcome) {
	if o.build {
		r.fail("script_failure", o.code, fmt.Sprintf(": exit code %d", o.code))
		return
	}
	r.fail("runner_system_failure", 0, " (system failure): "+o.reason)
}

func (r *run) fail(reason string, code int, msg string) {
	r.res.Status, r.res.FailureReason, r.res.ExitCode = "failed", reason, code
	fmt.Fprintf(r.log, "ERROR: Job failed%s\n", msg)
}

func (r *run) newTempDir() error {
	dir, err := os.MkdirTemp("", "custom-executor")
	if err != nil {
		return err
	}
	r.tmp = dir
	body, err := r.job.payload()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "response.json"), body, 0o600)
}

func (r *run) exitCodeFile() string { return filepath.Join(r.tmp, "build_exit_code") }

func (r *run) projectDir() string {
	if r.cfg.BuildsDir == "" {
		return ""
	}
	return r.cfg.BuildsDir + "/group/demo"
}

// env is the runner's layering: its own env, the five fixed variables, job_env, then
// CUSTOM_ENV_* (later entries win in os/exec).
func (r *run) env(jobEnv map[string]string, status string) []string {
	env := append(os.Environ(), r.opt.Env...)
	env = append(env, "EC2_EXECUTOR_CONFIG="+r.opt.Settings, "TMPDIR="+r.tmp,
		"BUILD_FAILURE_EXIT_CODE=1", "SYSTEM_FAILURE_EXIT_CODE=2", "JOB_RESPONSE_FILE="+filepath.Join(r.tmp, "response.json"))
	if !r.opt.Runner175 {
		env = append(env, "BUILD_EXIT_CODE_FILE="+r.exitCodeFile())
	}
	for k, v := range jobEnv {
		env = append(env, k+"="+v)
	}
	for _, v := range r.job.allVariables(r.projectDir()) {
		env = append(env, "CUSTOM_ENV_"+v.Key+"="+v.Value)
	}
	return append(env, "CUSTOM_ENV_CI_JOB_STATUS="+status, "CUSTOM_ENV_CI_JOB_SERVICES="+r.job.ciJobServices(!r.opt.Runner175))
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
