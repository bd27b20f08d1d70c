package runnersim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Job is one CI job as GitLab would send it, reduced to what the driver sees.
type Job struct {
	ID, ProjectID, PipelineID int
	Name                      string
	Image                     string
	// Variables are user CI/CD variables (masked in spirit: tests check they never leak).
	Variables   []Variable
	Script      []string
	AfterScript []string
	Credentials []Credential
	// Token is the job token (CI_JOB_TOKEN), a secret.
	Token string
	// Timeout is the job timeout; Interrupt cancels the job, or makes its timeout
	// expire, while one stage runs.
	Timeout   time.Duration
	Interrupt Interrupt
	// Extra appends commands to a predefined stage's script (a sleep there gives an
	// interrupt something to stop).
	Extra map[string][]string
	// EditPayload may rewrite the payload before it is written, and EditRaw its
	// bytes (bad-input tests).
	EditPayload func(map[string]any)
	EditRaw     func([]byte) []byte
	// ImageEntrypoint, ImageUser and ImagePullPolicy are the image's options.
	ImageEntrypoint []string
	ImageUser       string
	ImagePullPolicy []string
	Services        []Service
	// RepoURL makes get_sources clone it (GIT_STRATEGY=clone) as the runner would.
	RepoURL string
	// CacheKey adds restore_cache and archive_cache (paths CachePaths); Artifacts
	// adds upload_artifacts_* for those paths.
	CacheKey   string
	CachePaths []string
	Artifacts  []string

	// serverURL is the runner's url (Options.API's): CI_SERVER_URL, and where
	// artifacts are uploaded. Without it the runner skips the upload stages.
	serverURL string
}

// Interrupt is a cancel from GitLab (the UI's button), or the job timeout expiring,
// After into Stage ("prepare" or a run stage). A cancel during build_script ends
// only the script, so after_script and the later stages still run; anywhere else, as
// any timeout, it ends the job's context and only cleanup follows.
type Interrupt struct {
	Stage   string
	After   time.Duration
	Timeout bool
}

// Service is a services: entry.
type Service struct {
	Name, Alias         string
	Command, Entrypoint []string
	PullPolicy          []string
	Variables           map[string]string
}

// Variable is a job variable; File makes it a file-type variable.
type Variable struct {
	Key, Value   string
	Public, File bool
}

// Credential is a credentials[] entry of type registry.
type Credential struct{ URL, Username, Password string }

// payload builds the JOB_RESPONSE_FILE document in the HEAD shape.
func (j Job) payload() ([]byte, error) {
	vars := []map[string]any{}
	for _, v := range j.allVariables("") {
		vars = append(vars, map[string]any{"key": v.Key, "value": v.Value, "public": v.Public, "file": v.File, "masked": !v.Public, "raw": false})
	}
	creds := []map[string]any{}
	for _, c := range j.Credentials {
		creds = append(creds, map[string]any{"type": "registry", "url": c.URL, "username": c.Username, "password": c.Password})
	}
	p := map[string]any{
		"id": j.ID, "token": j.Token, "allow_git_fetch": true,
		"job_info":    map[string]any{"name": j.Name, "stage": "test", "project_id": j.ProjectID, "project_name": "demo"},
		"runner_info": map[string]any{"timeout": int(j.Timeout.Seconds())},
		"variables":   vars,
		"steps":       []map[string]any{{"name": "script", "script": j.Script, "timeout": 3600, "when": "on_success"}},
		"image":       j.imagePayload(),
		"services":    j.servicesPayload(),
		"credentials": creds,
		"features":    map[string]any{},
	}
	if j.EditPayload != nil {
		j.EditPayload(p)
	}
	b, err := json.Marshal(p)
	if err == nil && j.EditRaw != nil {
		b = j.EditRaw(b)
	}
	return b, err
}

func (j Job) imagePayload() map[string]any {
	img := map[string]any{"name": j.Image, "executor_opts": map[string]any{"docker": map[string]any{"platform": "", "user": j.ImageUser}}}
	if j.ImageEntrypoint != nil {
		img["entrypoint"] = j.ImageEntrypoint
	}
	if j.ImagePullPolicy != nil {
		img["pull_policy"] = j.ImagePullPolicy
	}
	return img
}

func (j Job) servicesPayload() []any {
	out := []any{}
	for _, s := range j.Services {
		svc := map[string]any{"name": s.Name, "alias": s.Alias, "executor_opts": map[string]any{"docker": map[string]any{"platform": "", "user": ""}}}
		if s.Command != nil {
			svc["command"] = s.Command
		}
		if s.Entrypoint != nil {
			svc["entrypoint"] = s.Entrypoint
		}
		if s.PullPolicy != nil {
			svc["pull_policy"] = s.PullPolicy
		}
		var vars []map[string]any
		for k, v := range s.Variables {
			vars = append(vars, map[string]any{"key": k, "value": v, "public": true})
		}
		if vars != nil {
			svc["variables"] = vars
		}
		out = append(out, svc)
	}
	return out
}

// ciJobServices is CUSTOM_ENV_CI_JOB_SERVICES: only the first alias, no pull policy,
// and the variables only from runners newer than 17.5.
func (j Job) ciJobServices(withVariables bool) string {
	if len(j.Services) == 0 {
		return ""
	}
	var list []map[string]any
	for _, s := range j.Services {
		alias, _, _ := strings.Cut(s.Alias, ",")
		svc := map[string]any{"name": s.Name, "alias": alias, "entrypoint": s.Entrypoint, "command": s.Command}
		if withVariables && len(s.Variables) > 0 {
			svc["variables"] = s.Variables
		}
		list = append(list, svc)
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// allVariables are the variables the runner puts in CUSTOM_ENV_* and in the scripts.
func (j Job) allVariables(projectDir string) []Variable {
	id := strconv.Itoa(j.ID)
	vars := []Variable{
		{Key: "CI_JOB_ID", Value: id, Public: true},
		{Key: "CI_JOB_NAME", Value: j.Name, Public: true},
		{Key: "CI_PROJECT_ID", Value: strconv.Itoa(j.ProjectID), Public: true},
		{Key: "CI_PIPELINE_ID", Value: strconv.Itoa(j.PipelineID), Public: true},
		{Key: "CI_PROJECT_PATH", Value: "group/demo", Public: true},
		{Key: "CI_RUNNER_ID", Value: "1", Public: true},
		{Key: "CI_RUNNER_VERSION", Value: "17.5.0", Public: true},
		{Key: "CI_SERVER", Value: "yes", Public: true},
		{Key: "CI_JOB_TOKEN", Value: j.Token},
		{Key: "GIT_STRATEGY", Value: j.gitStrategy(), Public: true},
		{Key: "CI_REPOSITORY_URL", Value: j.RepoURL, Public: true},
		{Key: "CI_PROJECT_DIR", Value: projectDir, Public: true},
		{Key: "RUNNER_TEMP_PROJECT_DIR", Value: projectDir + ".tmp", Public: true},
	}
	if j.Image != "" {
		vars = append(vars, Variable{Key: "CI_JOB_IMAGE", Value: j.Image, Public: true})
	}
	if j.serverURL != "" {
		vars = append(vars, Variable{Key: "CI_SERVER_URL", Value: strings.TrimSuffix(j.serverURL, "/"), Public: true})
	}
	return append(vars, j.Variables...)
}

func (j Job) gitStrategy() string {
	if j.RepoURL != "" {
		return "clone"
	}
	return "none"
}

// configOutput is the driver's config_exec JSON (runner's api.ConfigExecOutput).
type configOutput struct {
	BuildsDir string            `json:"builds_dir"`
	CacheDir  string            `json:"cache_dir"`
	Hostname  string            `json:"hostname"`
	JobEnv    map[string]string `json:"job_env"`
	Driver    *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"driver"`
}

func parseConfig(out []byte) (configOutput, error) {
	var c configOutput
	if len(out) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(out, &c); err != nil {
		return c, fmt.Errorf("error while parsing JSON output: %w", err)
	}
	return c, nil
}

// StageEnv prepares what one stage process gets from the runner, for tests that drive
// the driver by hand (to kill it at a chosen moment): it writes the job's response
// file into dir and returns the environment, with jobEnv as config's job_env.
func (j Job) StageEnv(opt Options, dir string, jobEnv map[string]string) ([]string, error) {
	body, err := j.payload()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "response.json"), body, 0o600); err != nil {
		return nil, err
	}
	r := &run{job: j, opt: opt, tmp: dir}
	return r.env(jobEnv, "running"), nil
}
