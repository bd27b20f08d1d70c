package stages

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

func TestParseEnvReadsTheRunnerContract(t *testing.T) {
	e := ParseEnv([]string{"BUILD_FAILURE_EXIT_CODE=11", "SYSTEM_FAILURE_EXIT_CODE=oops", "BUILD_EXIT_CODE_FILE=/t/bec",
		"JOB_RESPONSE_FILE=/t/response.json", "TMPDIR=/t", "CUSTOM_ENV_CI_JOB_ID=42", "CUSTOM_ENV_A=b=c", JobKeyVar + "=42-abcd"})
	if e.BuildFailureExitCode != 11 || e.SystemFailureExitCode != 2 || e.Vars["A"] != "b=c" || e.JobResponseFile != "/t/response.json" {
		t.Fatalf("parsed %+v", e)
	}
	if len(e.Problems) != 1 || !strings.Contains(e.Problems[0], "SYSTEM_FAILURE_EXIT_CODE") {
		t.Errorf("problems %v", e.Problems)
	}
	if key, err := e.JobKey(); err != nil || key != "42-abcd" {
		t.Errorf("JobKey %q %v", key, err)
	}
}

func TestJobKeyWithoutConfigExecAndMalformed(t *testing.T) {
	if key, _ := ParseEnv([]string{"CUSTOM_ENV_CI_JOB_ID=7"}).JobKey(); key != "job-7" {
		t.Errorf("derived key %q", key)
	}
	if _, err := ParseEnv(nil).JobKey(); err == nil {
		t.Error("want an error without any job id")
	}
	if _, err := ParseEnv([]string{JobKeyVar + "=../../etc/passwd"}).JobKey(); err == nil {
		t.Error("a key with a path must be refused")
	}
}

const headPayload = `{"id":42,"token":"tok-secret","runner_info":{"timeout":3600},"run":"[]",
"variables":[{"key":"A","value":"1","public":true,"file":false,"masked":false,"raw":false}],
"image":{"name":"alpine:3.20","entrypoint":[""],"pull_policy":["if-not-present"],"executor_opts":{"docker":{"platform":"linux/amd64","user":1000},"kubernetes":{"user":""}}},
"services":[{"name":"postgres:16","alias":"db,pg"}],
"credentials":[{"type":"registry","url":"reg.io","username":"gitlab-ci-token","password":"tok-secret"},{"type":"other","url":"x"}]}`

const payload175 = `{"id":"42","token":"t","image":{"name":"alpine","executor_opts":{"docker":{"platform":"","user":"root"}}},"run":"[]","features":{}}`

func TestDecodeJobBothShapes(t *testing.T) {
	j, err := DecodeJob([]byte(headPayload))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != 42 || j.Image.ExecutorOpts.Docker.User != "1000" || len(j.RegistryCredentials()) != 1 || j.Timeout != 3600 {
		t.Fatalf("decoded %+v", j)
	}
	j, err = DecodeJob([]byte(payload175))
	if err != nil || j.ID != 42 || j.Image.ExecutorOpts.Docker.User != "root" {
		t.Fatalf("17.5 shape: %+v %v", j, err)
	}
}

func TestDecodeJobErrorsNameTheFieldNotTheSecret(t *testing.T) {
	_, err := DecodeJob([]byte(headPayload[:60]))
	if err == nil || !strings.Contains(err.Error(), "truncated") || strings.Contains(err.Error(), "tok-secret") {
		t.Fatalf("truncated: %v", err)
	}
	_, err = DecodeJob([]byte(`{"token":"tok-secret","image":{"name":["x"]}}`))
	if err == nil || !strings.Contains(err.Error(), "field image") || strings.Contains(err.Error(), "tok-secret") {
		t.Fatalf("wrong type: %v", err)
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(headPayload))
	f.Add([]byte(payload175))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodeJob(data); err != nil && strings.Contains(err.Error(), "tok-secret") {
			t.Fatal("error quotes the payload")
		}
	})
}

func TestStateIsAtomic0600AndCorruptionIsNamed(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "jobs")}
	st := State{JobKey: "42-abcd", Lease: workers.Lease{InstanceID: "i-1", ClientKey: "secret-key"}}
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.path("42-abcd"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v %v", fi.Mode(), err)
	}
	got, err := s.Load("42-abcd")
	if err != nil || got.InstanceID != "i-1" {
		t.Fatalf("load %+v %v", got, err)
	}
	// The lease's fields sit at the top level, as in state files written before it.
	if b, _ := os.ReadFile(s.path("42-abcd")); !strings.Contains(string(b), `"instance_id":"i-1"`) {
		t.Errorf("state file layout changed: %s", b)
	}
	if _, err := s.Load("43-ffff"); !errors.Is(err, ErrNoState) {
		t.Fatalf("missing state: %v", err)
	}
	_ = os.WriteFile(s.path("42-abcd"), []byte(`{"job_key":"42-abcd","client_key":"secret-key"`), 0o600)
	if _, err := s.Load("42-abcd"); err == nil || !strings.Contains(err.Error(), "corrupt") || strings.Contains(err.Error(), "secret-key") {
		t.Fatalf("corrupt state: %v", err)
	}
	if err := s.Remove("42-abcd"); err != nil || s.Remove("42-abcd") != nil {
		t.Fatal("remove must be idempotent")
	}
}

func TestExitCodeMapping(t *testing.T) {
	dir := t.TempDir()
	env := ParseEnv([]string{"BUILD_FAILURE_EXIT_CODE=1", "SYSTEM_FAILURE_EXIT_CODE=2", "BUILD_EXIT_CODE_FILE=" + filepath.Join(dir, "bec")})
	code := func(err error, env RunnerEnv) int {
		c, werr := ExitCode(err, env)
		if werr != nil {
			t.Fatal(werr)
		}
		return c
	}
	if code(nil, env) != 0 || code(errors.New("ssh down"), env) != 2 {
		t.Fatal("nil or system error mapped wrong")
	}
	if c := code(errors.Join(errors.New("ctx"), &BuildError{ExitCode: 42}), env); c != 1 {
		t.Fatalf("build error mapped to %d", c)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bec")); string(b) != "42\n" {
		t.Fatalf("exit code file %q", b)
	}
	if code(&BuildError{ExitCode: 3}, ParseEnv(nil)) != 1 {
		t.Fatal("17.5 (no exit code file) must still report a build failure")
	}
	env.BuildExitCodeFile = filepath.Join(dir, "missing", "bec")
	if c, err := ExitCode(&BuildError{ExitCode: 3}, env); c != 2 || err == nil || !strings.Contains(err.Error(), "BUILD_EXIT_CODE_FILE") {
		t.Fatalf("unwritable exit code file: %d %v", c, err)
	}
}

func TestConfigPrintsOneJSONDocument(t *testing.T) {
	var out bytes.Buffer
	d := &Driver{Settings: settings.Default(), Env: ParseEnv([]string{"CUSTOM_ENV_CI_JOB_ID=42"}), Log: hclog.NewNullLogger(), Stdout: &out, Version: "v1.2.3"}
	if err := d.Config(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	var cfg configOutput
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value on stdout")
	}
	if cfg.BuildsDir != "/builds" || cfg.CacheDir != "/cache" || cfg.Driver.Version != "v1.2.3" || !strings.HasPrefix(cfg.JobEnv[JobKeyVar], "42-") {
		t.Fatalf("config output %+v", cfg)
	}
}

// A non-integer id once crashed the payload decoder (found by FuzzDecodeJob).
func TestNonIntegerIDIsANamedError(t *testing.T) {
	_, err := DecodeJob([]byte(`{"id":"forty-two","runner_info":{"timeout":"soon"}}`))
	if err == nil || !strings.Contains(err.Error(), "field id: wrong type (non-integer)") || !strings.Contains(err.Error(), "field runner_info") {
		t.Fatalf("got %v", err)
	}
}
