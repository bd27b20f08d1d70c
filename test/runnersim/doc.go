// Package runnersim drives the ec2-executor binary exactly as gitlab-runner drives a
// custom executor (shared/docs/runner-protocol.md): the environment it builds
// (CUSTOM_ENV_*, JOB_RESPONSE_FILE, TMPDIR as cwd, the exit-code variables), config
// then prepare retried up to 3 times with cleanup after each failed attempt, the run
// stages in the runner's order with scripts fed on stdin, SIGTERM to the process
// group on cancel or timeout and SIGKILL after the graceful timeout, and cleanup
// always. It records the job log the runner would show.
package runnersim
