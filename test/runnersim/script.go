package runnersim

import (
	"fmt"
	"strings"
)

// quote makes s a single-quoted POSIX shell word.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

// script builds a stage script the way the runner's bash shell does: strict mode,
// every variable exported, file variables written under RUNNER_TEMP_PROJECT_DIR, the
// body evaluated with stdin from nowhere. It is fed to the container's shell on
// stdin, so it must run under sh as well as bash.
func script(vars []Variable, body []string) string {
	var b strings.Builder
	b.WriteString("set -eo pipefail\nset +o noclobber\n")
	var inner strings.Builder
	for _, v := range vars {
		if v.File {
			continue
		}
		fmt.Fprintf(&inner, "export %s=%s\n", v.Key, quote(v.Value))
	}
	inner.WriteString("mkdir -p \"$RUNNER_TEMP_PROJECT_DIR\"\n")
	for _, v := range vars {
		if v.File {
			fmt.Fprintf(&inner, "printf '%%s' %s > \"$RUNNER_TEMP_PROJECT_DIR/%s\"\nexport %s=\"$RUNNER_TEMP_PROJECT_DIR/%s\"\n", quote(v.Value), v.Key, v.Key, v.Key)
		}
	}
	for _, line := range body {
		inner.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, ": | eval %s\nexit 0\n", quote(inner.String()))
	return b.String()
}

// userCommands echoes each command in green before running it, as the job log shows.
func userCommands(cmds []string) []string {
	out := []string{`cd "$CI_PROJECT_DIR"`}
	for _, c := range cmds {
		out = append(out, fmt.Sprintf(`printf '\033[32;1m$ %%s\033[0;m\n' %s`, quote(c)), c)
	}
	return out
}

// stageBody is a stage's script: the runner's, then the job's Extra commands.
func stageBody(stage, hostname string, job Job) []string {
	return append(predefinedBody(stage, hostname, job), job.Extra[stage]...)
}

func predefinedBody(stage, hostname string, job Job) []string {
	switch stage {
	case "prepare_script":
		return []string{fmt.Sprintf(`echo "Running on $(hostname) via %s..."`, hostname)}
	case "get_sources":
		return getSources(job)
	case "restore_cache":
		return restoreCache(job)
	case "archive_cache", "archive_cache_on_failure":
		return archiveCache(job)
	case "upload_artifacts_on_success", "upload_artifacts_on_failure":
		return uploadArtifacts(job)
	case "build_script":
		return userCommands(job.Script)
	case "after_script":
		return userCommands(job.AfterScript)
	case "cleanup_file_variables":
		return []string{`rm -rf "$RUNNER_TEMP_PROJECT_DIR"`}
	}
	return nil
}

// getSources clones the job's repository into the project directory, as the
// runner's clone strategy does (git init, fetch, checkout, condensed to a clone).
func getSources(job Job) []string {
	if job.RepoURL == "" {
		return []string{`echo "Skipping Git repository setup"`, `mkdir -p "$CI_PROJECT_DIR"`}
	}
	return []string{`echo "Fetching changes..."`, `rm -rf "$CI_PROJECT_DIR"`, `mkdir -p "$CI_PROJECT_DIR"`,
		`git clone -q "$CI_REPOSITORY_URL" "$CI_PROJECT_DIR"`, `echo "Checked out $(git -C "$CI_PROJECT_DIR" rev-parse --short HEAD)"`}
}

// The cache and artifact stages are written as gitlab-runner 17.5 writes them
// (shells/abstract.go): each call to its own binary is guarded by `gitlab-runner
// --version`, the local cache archive's path is relative to the project directory,
// and the uploader gets the runner's URL and the job's token on its command line.
const cacheTimeout = "10" // minutes, the runner's default cache request timeout

func cacheFile(job Job) string { return "../../../cache/group/demo/" + job.CacheKey + "/cache.zip" }

func restoreCache(job Job) []string {
	return guarded("Extracting cache",
		"echo "+quote("Checking cache for "+job.CacheKey+"..."),
		"if gitlab-runner cache-extractor --file "+cacheFile(job)+" --timeout "+cacheTimeout+
			"; then echo 'Successfully extracted cache'; else echo 'WARNING: Failed to extract cache'; fi")
}

func archiveCache(job Job) []string {
	args := "cache-archiver --file " + cacheFile(job) + " --timeout " + cacheTimeout
	for _, p := range job.CachePaths {
		args += " --path " + quote(p)
	}
	return guarded("Creating cache",
		"echo "+quote("Creating cache "+job.CacheKey+"..."),
		"if gitlab-runner "+args+"; then echo 'Created cache'; else echo 'WARNING: Failed to create cache'; fi")
}

func uploadArtifacts(job Job) []string {
	args := fmt.Sprintf("artifacts-uploader --url %s --token %s --id %d", quote(job.serverURL), quote(job.Token), job.ID)
	for _, p := range job.Artifacts {
		args += " --path " + quote(p)
	}
	return guarded("Uploading artifacts", `echo "Uploading artifacts..."`, "gitlab-runner "+args+" --artifact-format zip --artifact-type archive")
}

// guarded runs cmds in the project directory when the stage's container has a
// gitlab-runner, and otherwise says that what it does is disabled.
func guarded(what string, cmds ...string) []string {
	out := append([]string{`cd "$CI_PROJECT_DIR"`, "if gitlab-runner --version >/dev/null 2>&1; then"}, cmds...)
	return append(out, "else echo "+quote("Missing gitlab-runner. "+what+" is disabled.")+" >&2; fi")
}
