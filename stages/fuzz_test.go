package stages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseEnv: any environment yields usable exit codes and never panics.
func FuzzParseEnv(f *testing.F) {
	f.Add("BUILD_FAILURE_EXIT_CODE=1\x00SYSTEM_FAILURE_EXIT_CODE=2\x00CUSTOM_ENV_CI_JOB_ID=42")
	f.Add("SYSTEM_FAILURE_EXIT_CODE=-7\x00" + JobKeyVar + "=../x")
	f.Fuzz(func(t *testing.T, env string) {
		e := ParseEnv(strings.Split(env, "\x00"))
		for _, c := range []int{e.BuildFailureExitCode, e.SystemFailureExitCode} {
			if c < 0 || c > 255 {
				t.Fatalf("exit code %d out of range", c)
			}
		}
		if key, err := e.JobKey(); err == nil && !jobKeyPattern.MatchString(key) {
			t.Fatalf("accepted job key %q", key)
		}
	})
}

// FuzzServicesFromEnv: CUSTOM_ENV_CI_JOB_SERVICES parses or fails without quoting itself.
func FuzzServicesFromEnv(f *testing.F) {
	f.Add(`[{"name":"redis:7","alias":"cache","command":["redis-server"],"variables":{"A":"1"}}]`)
	f.Add(`[{"name":1}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := servicesFromEnv(raw)
		if err != nil && len(raw) > 12 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error quotes the input: %v", err)
		}
	})
}

// FuzzStateLoad: a state file with any content loads or fails naming the file, never
// quoting it (it holds the client's private key).
func FuzzStateLoad(f *testing.F) {
	f.Add(`{"job_key":"42-abcd","client_key":"-----BEGIN OPENSSH PRIVATE KEY-----"}`)
	f.Add(`{"job_key":`)
	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "42-abcd.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Store{Dir: dir}.Load("42-abcd")
		if err != nil && len(content) > 12 && strings.Contains(err.Error(), content) {
			t.Fatalf("error quotes the state file: %v", err)
		}
	})
}
