package examples

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ec2-executor/ec2-executor/settings"
)

func TestDriverSettingsExampleIsValid(t *testing.T) {
	if _, err := settings.LoadValid("driver-config.toml"); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerConfigCallsEveryStage(t *testing.T) {
	var cfg struct {
		Runners []struct {
			Executor string
			Custom   map[string]any `toml:"custom"`
		} `toml:"runners"`
	}
	if _, err := toml.DecodeFile("runner-config.toml", &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Runners) != 1 || cfg.Runners[0].Executor != "custom" {
		t.Fatalf("want one custom runner, got %+v", cfg.Runners)
	}
	for _, stage := range []string{"config", "prepare", "run", "cleanup"} {
		args, _ := cfg.Runners[0].Custom[stage+"_args"].([]any)
		if len(args) != 1 || args[0] != stage || !strings.HasSuffix(cfg.Runners[0].Custom[stage+"_exec"].(string), "ec2-executor") {
			t.Errorf("%s_exec/%s_args do not call `ec2-executor %s`", stage, stage, stage)
		}
	}
	if _, err := os.Stat("driver-config.toml"); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerTrustPolicyLetsEC2AssumeTheRole(t *testing.T) {
	var doc struct {
		Statement []struct{ Effect, Action string }
	}
	if err := json.Unmarshal([]byte(WorkerTrustPolicy), &doc); err != nil {
		t.Fatalf("iam/worker-trust-policy.json: %v", err)
	}
	if len(doc.Statement) != 1 || doc.Statement[0].Effect != "Allow" || doc.Statement[0].Action != "sts:AssumeRole" {
		t.Fatalf("unexpected trust policy: %+v", doc)
	}
}

type policy struct {
	Statement []struct {
		Sid       string
		Effect    string
		Action    any
		Resource  any
		Condition map[string]map[string]string
	}
}

func parsePolicy(t *testing.T, name, doc string) policy {
	t.Helper()
	var p policy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// TestManagerPolicyScopesLaunchTerminateAndPassRole checks the properties operators
// rely on: nothing that creates, tags or terminates instances is unconditioned, and
// PassRole names one role.
func TestManagerPolicyScopesLaunchTerminateAndPassRole(t *testing.T) {
	p := parsePolicy(t, "manager-policy.json", ManagerPolicy)
	seen := map[string]bool{}
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Fatalf("%s: unexpected effect %s", s.Sid, s.Effect)
		}
		action, _ := s.Action.(string)
		switch action {
		case "ec2:TerminateInstances":
			seen["terminate"] = s.Condition["StringEquals"]["ec2:ResourceTag/managed-by"] == "ec2-executor"
		case "ec2:CreateTags": // at launch, and the pool's state and expiry tags on its own workers
			seen["tag"] = seen["tag"] || s.Condition["StringEquals"]["ec2:CreateAction"] == "RunInstances"
			seen["retag"] = seen["retag"] || s.Condition["StringEquals"]["ec2:ResourceTag/managed-by"] == "ec2-executor"
		case "iam:PassRole":
			r, _ := s.Resource.(string)
			seen["passrole"] = strings.Contains(r, ":role/") && !strings.Contains(r, "*") &&
				s.Condition["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"
		case "ec2:RunInstances":
			if s.Condition != nil {
				seen["launch"] = s.Condition["StringEquals"]["aws:RequestTag/managed-by"] == "ec2-executor"
			}
		}
		if s.Resource == "*" && action != "" && action != "ec2:DescribeInstances" {
			t.Errorf("%s: %s on every resource", s.Sid, action)
		}
	}
	for _, want := range []string{"launch", "tag", "retag", "terminate", "passrole"} {
		if !seen[want] {
			t.Errorf("manager policy: %s is not scoped", want)
		}
	}
}

func TestWorkerPolicyOnlyReadsECR(t *testing.T) {
	for _, s := range parsePolicy(t, "worker-policy.json", WorkerPolicy).Statement {
		actions, _ := s.Action.([]any)
		if a, ok := s.Action.(string); ok {
			actions = []any{a}
		}
		for _, a := range actions {
			name := a.(string)
			if !strings.HasPrefix(name, "ecr:Get") && !strings.HasPrefix(name, "ecr:Batch") {
				t.Errorf("worker policy grants %s", name)
			}
		}
	}
}

// TestPoolUnitRunsThePoolAsTheRunnersUser keeps the example unit in step with the
// binary's command line and the default state directory.
func TestPoolUnitRunsThePoolAsTheRunnersUser(t *testing.T) {
	b, err := os.ReadFile("systemd/ec2-executor-pool.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"ExecStart=/usr/local/bin/ec2-executor --config /etc/ec2-executor/config.toml pool\n",
		"User=gitlab-runner\n", "KillSignal=SIGTERM\n", "ReadWritePaths=" + settings.Default().StateDir + "\n", "Restart=always\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the pool unit lacks %q", want)
		}
	}
}

// TestMakeInstallPutsEverythingInPlace runs `make install` into a scratch DESTDIR and
// checks what an operator relies on: the modes, the units, and that a second install
// never overwrites the settings file.
func TestMakeInstallPutsEverythingInPlace(t *testing.T) {
	dest := t.TempDir()
	install := func() {
		cmd := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/opt/ec2x", "RUNNER_USER=nobody")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for path, mode := range map[string]os.FileMode{"opt/ec2x/bin/ec2-executor": 0o755, "etc/ec2-executor/config.toml": 0o640,
		"var/lib/ec2-executor": 0o700 | os.ModeDir, "etc/systemd/system/ec2-executor-pool.service": 0o644,
		"etc/systemd/system/ec2-executor-reap.timer": 0o644} {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode(), err, mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "etc/systemd/system/ec2-executor-reap.service"))
	if !strings.Contains(string(unit), "ExecStart=/opt/ec2x/bin/ec2-executor --config /etc/ec2-executor/config.toml reap --all-managers") ||
		!strings.Contains(string(unit), "User=nobody") {
		t.Errorf("reap unit:\n%s", unit)
	}
	mine := filepath.Join(dest, "etc/ec2-executor/config.toml")
	if err := os.WriteFile(mine, []byte("manager_id = \"mine\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	install()
	if b, _ := os.ReadFile(mine); string(b) != "manager_id = \"mine\"\n" {
		t.Errorf("a second install overwrote the settings:\n%s", b)
	}
}
