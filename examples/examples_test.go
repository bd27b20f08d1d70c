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
		// ecr:GetAuthorizationToken takes no resource but "*" (AWS's own rule).
		if s.Resource == "*" && action != "" && action != "ec2:DescribeInstances" && action != "ecr:GetAuthorizationToken" {
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

// TestPoolUnitsRunAsTheStagesUser keeps the example units in step with the binary's
// command line and the default state directory, and the template with the plain
// unit: they differ only where the runner's name goes.
func TestPoolUnitsRunAsTheStagesUser(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("systemd/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unit, tmpl := read("ec2-executor-pool.service"), read("ec2-executor-pool@.service")
	for _, want := range []string{"ExecStart=/usr/local/bin/ec2-executor --config /etc/ec2-executor/config.toml pool\n",
		"KillSignal=SIGTERM\n", "StateDirectory=" + strings.TrimPrefix(settings.Default().StateDir, "/var/lib/") + "\n", "Restart=always\n",
		"StartLimitBurst=5\n", "CapabilityBoundingSet=\n", "UMask=0077\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the pool unit lacks %q", want)
		}
	}
	// Root by default, as the official gitlab-runner service runs every stage.
	if strings.Contains(unit, "\nUser=") {
		t.Error("the pool unit names a user: it must run as the stages do (root with the official package)")
	}
	strip := func(u string) []string {
		var out []string
		for _, l := range strings.Split(u, "\n") {
			if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "Description=") && !strings.HasPrefix(l, "ExecStart=") && !strings.HasPrefix(l, "StateDirectory=") {
				out = append(out, l)
			}
		}
		return out
	}
	if a, b := strings.Join(strip(unit), "\n"), strings.Join(strip(tmpl), "\n"); a != b {
		t.Errorf("the template unit drifted from the pool unit:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(tmpl, "--config /etc/ec2-executor/%i.toml pool\n") || !strings.Contains(tmpl, "StateDirectory=ec2-executor/%i\n") {
		t.Errorf("the template's settings and state:\n%s", tmpl)
	}
}

// TestMakeInstallPutsEverythingInPlace runs `make install` into a scratch DESTDIR and
// checks what an operator relies on: the modes, the units, and that a second install
// never overwrites the settings file.
func TestMakeInstallPutsEverythingInPlace(t *testing.T) {
	dest := t.TempDir()
	install := func() {
		cmd := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/opt/ec2x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for path, mode := range map[string]os.FileMode{"opt/ec2x/bin/ec2-executor": 0o755, "etc/ec2-executor/config.toml": 0o640,
		"var/lib/ec2-executor": 0o700 | os.ModeDir, "etc/systemd/system/ec2-executor-pool.service": 0o644,
		"etc/systemd/system/ec2-executor-reap.timer": 0o644, "etc/systemd/system/ec2-executor-pool@.service": 0o644} {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode(), err, mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "etc/systemd/system/ec2-executor-reap.service"))
	if !strings.Contains(string(unit), "ExecStart=/opt/ec2x/bin/ec2-executor --config /etc/ec2-executor/config.toml reap --all-managers") {
		t.Errorf("reap unit:\n%s", unit)
	}
	if out, err := exec.Command("file", filepath.Join(dest, "opt/ec2x/bin/ec2-executor")).Output(); err != nil ||
		!strings.Contains(string(out), "statically linked") || !strings.Contains(string(out), "stripped") || strings.Contains(string(out), "not stripped") {
		t.Errorf("make install's binary is not the release build: %s %v", out, err)
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
