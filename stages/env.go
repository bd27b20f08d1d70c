package stages

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// JobKeyVar is the job_env entry config hands to the later stages: it names the job's
// state file and tags its instance.
const JobKeyVar = "EC2_EXECUTOR_JOB_KEY"

const customPrefix = "CUSTOM_ENV_"

var jobKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// RunnerEnv is what gitlab-runner passes to every stage process.
type RunnerEnv struct {
	BuildFailureExitCode  int
	SystemFailureExitCode int
	// BuildExitCodeFile is set by runners from 17.6 on; empty for older ones.
	BuildExitCodeFile string
	JobResponseFile   string
	TmpDir            string
	// jobKey comes from config's job_env; JobKey derives one when config_exec is not used.
	jobKey string
	// Vars are the job's variables (CUSTOM_ENV_ stripped). Values may be secrets.
	Vars map[string]string
	// Problems lists malformed runner variables that were replaced by defaults.
	Problems []string
}

// ParseEnv reads the runner's variables from an environment list (os.Environ()).
// It never fails: the exit-code variables fall back to the runner's own defaults so
// that an error can always be reported with a sensible code.
func ParseEnv(environ []string) RunnerEnv {
	e := RunnerEnv{BuildFailureExitCode: 1, SystemFailureExitCode: 2, Vars: map[string]string{}}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, customPrefix):
			e.Vars[strings.TrimPrefix(k, customPrefix)] = v
		case k == "BUILD_FAILURE_EXIT_CODE":
			e.BuildFailureExitCode = e.exitCode(k, v, 1)
		case k == "SYSTEM_FAILURE_EXIT_CODE":
			e.SystemFailureExitCode = e.exitCode(k, v, 2)
		case k == "BUILD_EXIT_CODE_FILE":
			e.BuildExitCodeFile = v
		case k == "JOB_RESPONSE_FILE":
			e.JobResponseFile = v
		case k == "TMPDIR":
			e.TmpDir = v
		case k == JobKeyVar:
			e.jobKey = v
		}
	}
	return e
}

func (e *RunnerEnv) exitCode(name, v string, def int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		e.Problems = append(e.Problems, fmt.Sprintf("%s=%q is not an exit code; using %d", name, v, def))
		return def
	}
	return n
}

// KeyFromConfig reports whether config handed over a job key. When it did not,
// config failed (or is not configured) and no prepare launched anything under a key
// cleanup could not find in the state directory.
func (e RunnerEnv) KeyFromConfig() bool { return e.jobKey != "" }

// JobKey returns the key config chose, or "job-<CI_JOB_ID>" when the runner has no
// config_exec, so prepare, run and cleanup always agree on one.
func (e RunnerEnv) JobKey() (string, error) {
	key := e.jobKey
	if key == "" {
		id := e.Vars["CI_JOB_ID"]
		if id == "" {
			return "", fmt.Errorf("neither %s nor CUSTOM_ENV_CI_JOB_ID is set: is this process run by gitlab-runner?", JobKeyVar)
		}
		key = "job-" + id
	}
	if !jobKeyPattern.MatchString(key) {
		return "", fmt.Errorf("job key %q is malformed (want lower-case letters, digits and dashes)", key)
	}
	return key, nil
}
