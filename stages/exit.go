package stages

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// BuildError is the only error that means the job's own script failed. Everything
// else the driver returns is a system failure (retryable with
// `retry: when: runner_system_failure`).
// A BuildError with a Cause is a job's own configuration the driver refuses (such as
// an override outside the operator's allow-list): retrying on another worker would not help.
type BuildError struct {
	ExitCode int
	Cause    error
}

func (e *BuildError) Error() string {
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("script exited with code %d", e.ExitCode)
}

func (e *BuildError) Unwrap() error { return e.Cause }

// jobError marks a problem with the job's own settings as a build failure.
func jobError(err error) error { return &BuildError{ExitCode: 1, Cause: err} }

// ExitCode maps a stage's result to the process exit code gitlab-runner expects,
// writing BUILD_EXIT_CODE_FILE for build failures when the runner provides it (so
// `allow_failure: exit_codes` sees the script's real code). This is the only place
// the mapping is made. A file that cannot be written turns the build failure into a
// system failure (the runner would otherwise report the wrong code), and the
// returned error says why, for the caller to report.
func ExitCode(err error, env RunnerEnv) (int, error) {
	if err == nil {
		return 0, nil
	}
	var be *BuildError
	if !errors.As(err, &be) {
		return env.SystemFailureExitCode, nil
	}
	if env.BuildExitCodeFile != "" {
		if werr := os.WriteFile(env.BuildExitCodeFile, []byte(strconv.Itoa(be.ExitCode)+"\n"), 0o600); werr != nil {
			return env.SystemFailureExitCode, fmt.Errorf("writing the script's exit code %d to BUILD_EXIT_CODE_FILE: %w", be.ExitCode, werr)
		}
	}
	return env.BuildFailureExitCode, nil
}
