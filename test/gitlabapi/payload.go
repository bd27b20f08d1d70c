package gitlabapi

import (
	"encoding/json"
	"path"
	"strconv"
	"strings"
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
	// CachePolicy is pull-push (the default), pull or push.
	CachePolicy string
	// ArtifactPaths are uploaded on success; JUnit files as a junit report.
	ArtifactPaths []string
	JUnit         []string
	// Dependencies are earlier jobs whose archives this job downloads.
	Dependencies []Dependency
	// Git: with GitStrategy fetch or clone the job checks out SHA at Ref (a branch, or
	// a tag when RefType is "tag") of Project from the server's Git, with GitDepth
	// and GitSubmodules (GIT_SUBMODULE_STRATEGY). An empty GitStrategy is none.
	GitStrategy, GitSubmodules string
	Project, Ref, RefType, SHA string
	GitDepth                   int
	// ImageEntrypoint overrides the image's (image: {entrypoint: [...]}); PullPolicy
	// is the image's pull_policy.
	ImageEntrypoint []string
	PullPolicy      []string
	// FileVariables are file-type CI/CD variables.
	FileVariables map[string]string
}

// Service is a services: entry.
type Service struct {
	Name, Alias         string
	Command, Entrypoint []string
}

// Dependency is a dependencies: entry, an earlier job with an artifacts archive.
type Dependency struct {
	ID          int
	Name, Token string
	Size        int
}

// Credential is a credentials[] entry of type registry.
type Credential struct{ URL, Username, Password string }

// Payload is the jobs/request answer for spec in gitlab-runner 17.5's shape
// (runner-protocol.md §8.3), with the predefined variables the driver reads. The
// repository URL carries the job's token, as GitLab's does.
func Payload(s Spec, serverURL string) []byte {
	id := strconv.Itoa(s.ID)
	s = withGitDefaults(s)
	vars := []map[string]any{}
	add := func(k, v string, public bool) {
		vars = append(vars, map[string]any{"key": k, "value": v, "public": public, "masked": !public})
	}
	for k, v := range map[string]string{"CI_JOB_ID": id, "CI_JOB_NAME": "e2e", "CI_PROJECT_ID": strconv.Itoa(s.ProjectID),
		"CI_PIPELINE_ID": strconv.Itoa(300 + s.ID), "CI_PROJECT_PATH": s.Project, "CI_PROJECT_PATH_SLUG": strings.ReplaceAll(s.Project, "/", "-"),
		"CI_RUNNER_ID": "1", "CI_SERVER_URL": strings.TrimSuffix(serverURL, "/"), "GIT_STRATEGY": s.GitStrategy, "CI_JOB_IMAGE": s.Image,
		"CI_COMMIT_SHA": s.SHA, "CI_COMMIT_REF_NAME": s.Ref} {
		add(k, v, true)
	}
	if s.GitDepth > 0 {
		add("GIT_DEPTH", strconv.Itoa(s.GitDepth), true)
	}
	if s.GitSubmodules != "" {
		add("GIT_SUBMODULE_STRATEGY", s.GitSubmodules, true)
	}
	add("CI_JOB_TOKEN", s.Token, false)
	add("CI_REPOSITORY_URL", repoURL(serverURL, s), false)
	for k, v := range s.Variables {
		add(k, v, true)
	}
	for k, v := range s.FileVariables {
		vars = append(vars, map[string]any{"key": k, "value": v, "public": false, "masked": false, "file": true})
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
		services = append(services, map[string]any{"name": sv.Name, "alias": sv.Alias, "command": sv.Command, "entrypoint": sv.Entrypoint})
	}
	creds := []map[string]any{}
	for _, c := range s.Credentials {
		creds = append(creds, map[string]any{"type": "registry", "url": c.URL, "username": c.Username, "password": c.Password})
	}
	caches := []map[string]any{}
	if s.CacheKey != "" {
		policy := s.CachePolicy
		if policy == "" {
			policy = "pull-push"
		}
		caches = append(caches, map[string]any{"key": s.CacheKey, "paths": s.CachePaths, "policy": policy, "when": "on_success"})
	}
	p := map[string]any{
		"id": s.ID, "token": s.Token, "allow_git_fetch": s.GitStrategy == "fetch",
		"job_info":     map[string]any{"name": "e2e", "stage": "test", "project_id": s.ProjectID, "project_name": path.Base(s.Project)},
		"git_info":     gitInfo(serverURL, s),
		"runner_info":  map[string]any{"timeout": timeout},
		"variables":    vars,
		"steps":        steps,
		"image":        map[string]any{"name": s.Image, "entrypoint": s.ImageEntrypoint, "pull_policy": s.PullPolicy},
		"services":     services,
		"credentials":  creds,
		"cache":        caches,
		"artifacts":    artifacts(s),
		"dependencies": dependencies(s),
		"features":     map[string]any{"trace_sections": true, "failure_reasons": []string{"script_failure", "runner_system_failure", "job_execution_timeout", "unknown_failure"}},
	}
	b, _ := json.Marshal(p)
	return b
}

// withGitDefaults fills in the project, ref and strategy a spec leaves out.
func withGitDefaults(s Spec) Spec {
	if s.Project == "" {
		s.Project = "group/demo"
	}
	if s.GitStrategy == "" {
		s.GitStrategy = "none"
	}
	if s.Ref == "" {
		s.Ref = "main"
	}
	if s.RefType == "" {
		s.RefType = "branch"
	}
	if s.SHA == "" {
		s.SHA = "0123456789abcdef0123456789abcdef01234567"
	}
	return s
}

// repoURL is the project's clone URL with the job's token, as GitLab sends it.
func repoURL(serverURL string, s Spec) string {
	return strings.Replace(serverURL, "://", "://"+GitUser+":"+s.Token+"@", 1) + s.Project + ".git"
}

// gitInfo is git_info as GitLab sends it: a branch's refspec, and every tag only for
// a full clone (GIT_DEPTH 0), or the tag's own refspec.
func gitInfo(serverURL string, s Spec) map[string]any {
	refspecs := []string{"+refs/heads/" + s.Ref + ":refs/remotes/origin/" + s.Ref}
	if s.GitDepth == 0 {
		refspecs = append(refspecs, "+refs/tags/*:refs/tags/*")
	}
	if s.RefType == "tag" {
		refspecs = []string{"+refs/tags/" + s.Ref + ":refs/tags/" + s.Ref}
	}
	return map[string]any{"repo_url": repoURL(serverURL, s), "ref": s.Ref, "sha": s.SHA,
		"before_sha": "0000000000000000000000000000000000000000", "ref_type": s.RefType,
		"refspecs": refspecs, "depth": s.GitDepth}
}

func artifacts(s Spec) []map[string]any {
	out := []map[string]any{}
	if len(s.ArtifactPaths) > 0 {
		out = append(out, map[string]any{"name": "out", "paths": s.ArtifactPaths, "when": "on_success", "artifact_type": "archive", "artifact_format": "zip"})
	}
	if len(s.JUnit) > 0 {
		out = append(out, map[string]any{"name": "junit.xml.gz", "paths": s.JUnit, "when": "always", "artifact_type": "junit", "artifact_format": "gzip"})
	}
	return out
}

func dependencies(s Spec) []map[string]any {
	out := []map[string]any{}
	for _, d := range s.Dependencies {
		out = append(out, map[string]any{"id": d.ID, "token": d.Token, "name": d.Name,
			"artifacts_file": map[string]any{"filename": "artifacts.zip", "size": d.Size}})
	}
	return out
}
