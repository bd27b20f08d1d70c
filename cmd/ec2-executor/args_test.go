package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGlobalFlagsWorkAfterTheCommand(t *testing.T) {
	cases := map[string]string{
		"ec2-executor validate --config /etc/x.toml":               "ec2-executor --config /etc/x.toml validate",
		"ec2-executor --config /a validate":                        "ec2-executor --config /a validate",
		"ec2-executor pool status --config=/b --log-level debug":   "ec2-executor --config=/b --log-level debug pool status",
		"ec2-executor run /tmp/script build_script --config /c":    "ec2-executor --config /c run /tmp/script build_script",
		"ec2-executor reap --dry-run -- --config not-a-flag-there": "ec2-executor reap --dry-run -- --config not-a-flag-there",
	}
	for in, want := range cases {
		if got := strings.Join(hoistFlags(strings.Fields(in)), " "); got != want {
			t.Errorf("%s\n  got  %s\n  want %s", in, got, want)
		}
	}
}

func TestValidateTakesTheConfigFlagAfterTheCommand(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(p, []byte("[pool]\nidle_cont = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run([]string{"ec2-executor", "validate", "--config", p}, nil, &out, &errs)
	if code == 0 || !strings.Contains(errs.String(), "pool.idle_cont: unknown key (did you mean pool.idle_count?)") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs.String())
	}
}

func TestVersionAndTheVersionFlagAgree(t *testing.T) {
	var a, b, errs bytes.Buffer
	run([]string{"ec2-executor", "version"}, nil, &a, &errs)
	run([]string{"ec2-executor", "--version"}, nil, &b, &errs)
	if a.String() == "" || a.String() != b.String() || !strings.Contains(a.String(), "go1.") || !strings.Contains(a.String(), "commit") {
		t.Fatalf("version %q, --version %q", a.String(), b.String())
	}
}

func TestNoCredentialsIsOneLineNamingTheChain(t *testing.T) {
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_PROFILE", ""},
		{"AWS_EC2_METADATA_DISABLED", "true"}, {"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
		{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""}, {"AWS_WEB_IDENTITY_TOKEN_FILE", ""}} {
		t.Setenv(kv[0], kv[1])
	}
	p := filepath.Join(t.TempDir(), "s.toml")
	cfg := "state_dir = \"" + t.TempDir() + "\"\n[aws]\nendpoint = \"http://127.0.0.1:9\"\n[instance]\nami = \"ami-0123456789abcdef0\"\ntypes = [\"t3.micro\"]\nsubnet_ids = [\"subnet-0123456789abcdef0\"]\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run([]string{"ec2-executor", "instances", "--config", p}, nil, &out, &errs)
	msg := strings.TrimSpace(errs.String())
	if code == 0 || !strings.HasPrefix(msg, "ERROR: no AWS credentials: the AWS SDK's default chain") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errs.String())
	}
}

// TestValidateListsEveryProblemAtOnce: a type error does not hide the values after
// it, validate FILE checks FILE, and a gitlab-runner config.toml gets one line.
func TestValidateListsEveryProblemAtOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "many.toml")
	doc := "[ssh]\nconnect_timeout = \"soon\"\nretry_interval = \"-1s\"\n[reap]\ngrace_period = \"-5m\"\ninterval = \"-1m\"\n[instance]\ninstance_types = [\"t3.micro\"]\nlaunch_timeout = \"-2s\"\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run([]string{"ec2-executor", "validate", p}, nil, &out, &errs)
	for _, want := range []string{"ssh.connect_timeout:", "ssh.retry_interval:", "reap.grace_period:", "reap.interval:", "instance.launch_timeout:",
		"instance.instance_types: unknown key (did you mean instance.types?)"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, errs.String())
		}
	}
	runner := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(runner, []byte("concurrent = 4\n[[runners]]\n  name = \"a\"\n  executor = \"docker+machine\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	run([]string{"ec2-executor", "validate", runner}, nil, &out, &errs)
	if got := strings.TrimSpace(errs.String()); !strings.Contains(got, "is a gitlab-runner config.toml") || !strings.Contains(got, "ec2-executor migrate --runner-config") || strings.Count(got, "\n") > 1 {
		t.Errorf("a runner config: %q", got)
	}
	errs.Reset()
	if code := run([]string{"ec2-executor", "validate", p, runner}, nil, &out, &errs); code == 0 || !strings.Contains(errs.String(), "validate checks one settings file, got 2 arguments") {
		t.Errorf("two files: exit %d %q", code, errs.String())
	}
}

func TestParseSince(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseSince(in); err != nil || got != want {
			t.Errorf("parseSince(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0d", "-1h", "week"} {
		if _, err := parseSince(bad); err == nil {
			t.Errorf("parseSince(%q) took it", bad)
		}
	}
}
