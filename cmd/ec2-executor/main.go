// Command ec2-executor is a GitLab Runner custom-executor driver that runs each job on
// a fresh EC2 worker. This file only wires: CLI, logger, settings, real clients, the
// signal context and the exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/stages"
	"github.com/ec2-executor/ec2-executor/workers"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", ""

// versionLine is what `version` and `--version` print: the version, the commit it
// was built from (when the build knew it) and the Go version.
func versionLine() string {
	rev := commit
	if info, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s %s (commit %s, %s)", stages.DriverName, version, rev, runtime.Version())
}

func main() {
	os.Exit(run(os.Args, os.Environ(), os.Stdout, os.Stderr))
}

// run returns the process exit code; stage errors are mapped by stages.ExitCode.
func run(args, environ []string, stdout, stderr io.Writer) int {
	env := stages.ParseEnv(environ)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	app := newApp(env, stdout, stderr)
	err := noCredentials(app.RunContext(ctx, hoistFlags(args)))
	var buildErr *stages.BuildError
	if err != nil && !(errors.As(err, &buildErr) && buildErr.Cause == nil) { // the runner reports the script's own exit
		fmt.Fprintf(stderr, "ERROR: %s\n", err)
	}
	code, werr := stages.ExitCode(err, env)
	if werr != nil {
		fmt.Fprintf(stderr, "ERROR: %s\n", werr)
	}
	return code
}

func newApp(env stages.RunnerEnv, stdout, stderr io.Writer) *cli.App {
	var log hclog.Logger
	var set settings.Settings
	var configPath string
	driver := func() *stages.Driver {
		for _, p := range env.Problems {
			log.Warn(p)
		}
		jobLog := log
		if key, err := env.JobKey(); err == nil && env.KeyFromConfig() { // one job's lines, through all its stages
			jobLog = log.With("job_key", key)
		}
		return &stages.Driver{Settings: set, Env: env, Log: jobLog, Stdout: stdout, Stderr: stderr,
			Version: version, Now: time.Now, NewAWS: newAWS(set, jobLog), StartHolder: func(key string) error { return stages.SpawnHolder(configPath, key) }}
	}
	load := func(c *cli.Context) error {
		configPath = c.String("config")
		s, err := settings.LoadValid(configPath)
		set = s
		return err
	}
	stage := func(fn func(*cli.Context, *stages.Driver) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if err := load(c); err != nil {
				return err
			}
			return fn(c, driver())
		}
	}
	cli.VersionPrinter = func(*cli.Context) { fmt.Fprintln(stdout, versionLine()) }
	return &cli.App{
		Name:           "ec2-executor",
		Usage:          "GitLab Runner custom executor that runs each job on a fresh EC2 worker",
		Version:        version,
		Writer:         stderr,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // run() maps every error to the runner's exit codes
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "settings file", EnvVars: []string{"EC2_EXECUTOR_CONFIG"}, Value: settings.DefaultPath},
			&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error", Value: "info"},
			&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text"},
		},
		Before: func(c *cli.Context) error {
			l, err := newLogger(c.String("log-level"), c.String("log-format"), stderr)
			log = l
			return err
		},
		Commands: []*cli.Command{
			{Name: "config", Usage: "runner config_exec: print the runner's JSON", Action: stage(func(_ *cli.Context, d *stages.Driver) error { return d.Config() })},
			{Name: "prepare", Usage: "runner prepare_exec: launch the worker and create the job's containers", Action: stage(func(c *cli.Context, d *stages.Driver) error { return d.Prepare(c.Context) })},
			{Name: "run", Usage: "runner run_exec: run one stage's script", ArgsUsage: "<script> <stage>", Action: stage(runStage)},
			{Name: "cleanup", Usage: "runner cleanup_exec: remove the job's containers and terminate its worker", Action: stage(func(c *cli.Context, d *stages.Driver) error {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 10*time.Minute)
				defer cancel()
				return d.Cleanup(ctx)
			})},
			{Name: "hold", Usage: "keep one SSH connection to a job's worker for its stages (prepare starts it)", ArgsUsage: "<job key>", Hidden: true,
				Action: stage(func(c *cli.Context, d *stages.Driver) error { return d.Hold(c.Context, c.Args().First()) })},
			{Name: "validate", Usage: "check a settings file (--config, or FILE) and print every problem", ArgsUsage: "[FILE]", Action: validate},
			{Name: "render-cloud-init", Usage: "print the #cloud-config a worker would get (with placeholder keys)", Action: stage(func(_ *cli.Context, d *stages.Driver) error {
				doc, err := workers.ReviewWorker(d.Settings)
				if err == nil {
					_, err = stdout.Write(doc)
				}
				return err
			})},
			{Name: "instances", Usage: "list the workers this manager owns", Flags: []cli.Flag{allManagers},
				Action: stage(func(c *cli.Context, d *stages.Driver) error {
					return d.Instances(c.Context, c.Bool("all-managers"), stdout)
				})},
			{Name: "reap", Usage: "terminate workers whose job is gone or that outlived instance.max_lifetime",
				Flags: []cli.Flag{allManagers, &cli.BoolFlag{Name: "dry-run", Usage: "list what would be terminated, terminate nothing"}},
				Action: stage(func(c *cli.Context, d *stages.Driver) error {
					return d.Reap(c.Context, workers.ReapOptions{DryRun: c.Bool("dry-run"), AllManagers: c.Bool("all-managers")}, stdout)
				})},
			poolCommand(func(c *cli.Context) (settings.Settings, error) { err := load(c); return set, err }, func() hclog.Logger { return log }, stdout),
			migrateCommand(func() hclog.Logger { return log }, stdout),
			costsCommand(func(c *cli.Context) (settings.Settings, error) { err := load(c); return set, err }, stdout),
			pricesCommand(func(c *cli.Context) (settings.Settings, error) { err := load(c); return set, err }, func() hclog.Logger { return log }, stdout),
			{Name: "version", Usage: "print the version, commit and Go version (as --version does)", Action: func(c *cli.Context) error {
				fmt.Fprintln(stdout, versionLine())
				return nil
			}},
		},
	}
}

var allManagers = &cli.BoolFlag{Name: "all-managers", Usage: "include other managers' workers (reaped by their expiry tag, or once their manager's heartbeat is older than reap.manager_timeout)"}

func runStage(c *cli.Context, d *stages.Driver) error {
	if c.NArg() != 2 {
		return fmt.Errorf("run takes <script> <stage>, got %d argument(s)", c.NArg())
	}
	return d.Run(c.Context, c.Args().Get(0), c.Args().Get(1))
}

// validate checks a settings file (--config, or the one FILE argument) and prints
// every problem at once: keys it cannot read, values that are wrong, and the worker
// cloud-config they imply.
func validate(c *cli.Context) error {
	path, err := validatePath(c)
	if err != nil {
		return err
	}
	s, err := settings.Load(path)
	var decode *settings.DecodeError
	if err != nil && !errors.As(err, &decode) {
		return err
	}
	problems := []error{err}
	if err := s.Validate(); err != nil {
		problems = append(problems, err)
	}
	if _, err := workers.CheckWorker(s); err != nil {
		problems = append(problems, fmt.Errorf("worker cloud-config: %w", err))
	}
	problems = append(problems, workers.CheckPrepull(s))
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("%s has problems:\n%w", path, err)
	}
	fmt.Fprintf(c.App.Writer, "%s is valid\n", path)
	return nil
}

// validatePath is the file validate checks: its one argument, else --config.
func validatePath(c *cli.Context) (string, error) {
	switch {
	case c.NArg() > 1:
		return "", fmt.Errorf("validate checks one settings file, got %d arguments", c.NArg())
	case c.NArg() == 1 && c.IsSet("config") && c.String("config") != c.Args().First():
		return "", fmt.Errorf("validate got two files, --config %s and %s: name one", c.String("config"), c.Args().First())
	case c.NArg() == 1:
		return c.Args().First(), nil
	}
	return c.String("config"), nil
}

func newLogger(level, format string, out io.Writer) (hclog.Logger, error) {
	l := hclog.LevelFromString(level)
	if l == hclog.NoLevel {
		return hclog.NewNullLogger(), fmt.Errorf("--log-level %q is not one of trace, debug, info, warn, error", level)
	}
	if format != "text" && format != "json" {
		return hclog.NewNullLogger(), fmt.Errorf("--log-format %q is not text or json", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "ec2-executor", Level: l, Output: out, JSONFormat: format == "json"}), nil
}
