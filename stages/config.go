package stages

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ec2-executor/ec2-executor/workers"
)

type configOutput struct {
	BuildsDir         string            `json:"builds_dir"`
	CacheDir          string            `json:"cache_dir"`
	BuildsDirIsShared bool              `json:"builds_dir_is_shared"`
	Hostname          string            `json:"hostname"`
	Driver            driverInfo        `json:"driver"`
	JobEnv            map[string]string `json:"job_env"`
}

type driverInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Config answers the runner's config_exec: exactly one JSON document on stdout. The
// settings were validated before this runs, and the job's overrides and the worker's
// cloud-config are checked here, so a broken setup fails before any EC2 call.
func (d *Driver) Config() error {
	if _, err := d.jobInstance(); err != nil {
		return err
	}
	if _, err := workers.CheckWorker(d.Settings); err != nil {
		return err
	}
	key, err := d.newJobKey()
	if err != nil {
		return err
	}
	out := configOutput{
		BuildsDir: d.Settings.Job.BuildsDir,
		CacheDir:  d.Settings.Job.CacheDir,
		Hostname:  "ec2-executor-" + key,
		Driver:    driverInfo{Name: DriverName, Version: d.Version},
		JobEnv:    map[string]string{JobKeyVar: key},
	}
	if err := json.NewEncoder(d.Stdout).Encode(out); err != nil {
		return fmt.Errorf("writing config JSON: %w", err)
	}
	return nil
}

// newJobKey is unique per prepare attempt: the runner re-runs config for each one, so
// a retried prepare never mistakes the previous attempt's worker for its own.
func (d *Driver) newJobKey() (string, error) {
	id := d.Env.Vars["CI_JOB_ID"]
	if id == "" {
		id = "0"
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating job key: %w", err)
	}
	key := id + "-" + hex.EncodeToString(b)
	if !jobKeyPattern.MatchString(key) {
		return "", fmt.Errorf("CUSTOM_ENV_CI_JOB_ID %q is not a job id", id)
	}
	return key, nil
}
