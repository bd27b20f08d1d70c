package gitlabapi

import (
	"encoding/json"
	"strconv"
)

// Spec describes a job the way a .gitlab-ci.yml and GitLab would hand it to a runner.
type Spec struct {
	ID, ProjectID       int
	Token               string
	Image               string
	Script, AfterScript []string
	Services            []Service
	Credentials         []Credential
	Variables           map[string]string
	TimeoutSeconds      int
	// CacheKey and CachePaths make a local cache (policy pull-push).
	CacheKey   string
	CachePaths []string
	// ArtifactPaths are uploaded on success.
	ArtifactPaths []string
}

// Service is a services: entry.
type Service struct{ Name, Alias string }

// Credential is a credentials[] entry of type registry.
type Credential struct{ URL, Username, Password string }

// Payload is the jobs/request answer for spec in gitlab-runner 17.5's shape
// (runner-protocol.md §8.3), with the predefined variables the driver reads and
// GIT_STRATEGY none, since there is no git server.
func Payload(s Spec, serverURL string) []byte {
	id := strconv.Itoa(s.ID)
	vars := []map[string]any{}
	add := func(k, v string, public bool) {
		vars = append(vars, map[string]any{"key": k, "value": v, "public": public, "masked": !public})
	}
	for k, v := range map[string]string{"CI_JOB_ID": id, "CI_JOB_NAME": "e2e", "CI_PROJECT_ID": strconv.Itoa(s.ProjectID),
		"CI_PIPELINE_ID": strconv.Itoa(300 + s.ID), "CI_PROJECT_PATH": "group/demo", "CI_PROJECT_PATH_SLUG": "group-demo",
		"CI_RUNNER_ID": "1", "CI_SERVER_URL": serverURL, "GIT_STRATEGY": "none", "CI_JOB_IMAGE": s.Image} {
		add(k, v, true)
	}
	add("CI_JOB_TOKEN", s.Token, false)
	for k, v := range s.Variables {
		add(k, v, true)
	}
	timeout := s.TimeoutSeconds
	if timeout == 0 {
		timeout = 600
	}
	steps := []map[string]any{{"name": "script", "script": s.Script, "timeout": timeout, "when": "on_success", "allow_failure": false}}
	if len(s.AfterScript) > 0 {
		steps = append(steps, map[string]any{"name": "after_script", "script": s.AfterScript, "timeout": 300, "when": "always", "allow_failure": true})
	}
	services := []map[string]any{}
	for _, sv := range s.Services {
		services = append(services, map[string]any{"name": sv.Name, "alias": sv.Alias})
	}
	creds := []map[string]any{}
	for _, c := range s.Credentials {
		creds = append(creds, map[string]any{"type": "registry", "url": c.URL, "username": c.Username, "password": c.Password})
	}
	caches := []map[string]any{}
	if s.CacheKey != "" {
		caches = append(caches, map[string]any{"key": s.CacheKey, "paths": s.CachePaths, "policy": "pull-push", "when": "on_success"})
	}
	artifacts := []map[string]any{}
	if len(s.ArtifactPaths) > 0 {
		artifacts = append(artifacts, map[string]any{"name": "out", "paths": s.ArtifactPaths, "when": "on_success", "artifact_type": "archive", "artifact_format": "zip"})
	}
	p := map[string]any{
		"id": s.ID, "token": s.Token, "allow_git_fetch": false,
		"job_info": map[string]any{"name": "e2e", "stage": "test", "project_id": s.ProjectID, "project_name": "demo"},
		"git_info": map[string]any{"repo_url": serverURL + "group/demo.git", "ref": "main", "sha": "0123456789abcdef0123456789abcdef01234567",
			"before_sha": "0000000000000000000000000000000000000000", "ref_type": "branch",
			"refspecs": []string{"+refs/heads/main:refs/remotes/origin/main"}, "depth": 1},
		"runner_info": map[string]any{"timeout": timeout},
		"variables":   vars,
		"steps":       steps,
		"image":       map[string]any{"name": s.Image},
		"services":    services,
		"credentials": creds,
		"cache":       caches,
		"artifacts":   artifacts,
		"features":    map[string]any{"trace_sections": true, "failure_reasons": []string{"script_failure", "runner_system_failure", "job_execution_timeout", "unknown_failure"}},
	}
	b, _ := json.Marshal(p)
	return b
}
