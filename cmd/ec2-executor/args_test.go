package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
