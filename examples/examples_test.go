package examples

import (
	"encoding/json"
	"os"
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
