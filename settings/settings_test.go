package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validTOML = `
manager_id = "ci-manager-1"
state_dir = "/var/lib/ec2-executor"
[aws]
region = "eu-west-1"
[instance]
ami = "ami-0123456789abcdef0"
type = "c6i.large"
subnet_id = "subnet-0123456789abcdef0"
security_group_ids = ["sg-0123456789abcdef0"]
iam_instance_profile = "ci-worker"
tags = { team = "platform" }
[ssh]
user = "runner"
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValidAppliesDefaults(t *testing.T) {
	s, err := LoadValid(write(t, validTOML))
	if err != nil {
		t.Fatal(err)
	}
	if s.Instance.Type != "c6i.large" || s.SSH.Port != 22 || s.Instance.MetadataHopLimit != 1 {
		t.Fatalf("unexpected settings: %+v", s)
	}
	if s.Job.BuildsDir != "/builds" || s.SSH.Address != AddressPrivate {
		t.Fatalf("defaults not applied: %+v", s.Job)
	}
}

func TestLoadRejectsUnknownKeysByName(t *testing.T) {
	_, err := Load(write(t, validTOML+"\nsubnet = \"x\"\n[instance.extra]\nfoo = 1\n"))
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"unknown key", "ssh.subnet", "instance.extra.foo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadRejectsWrongTypes(t *testing.T) {
	_, err := Load(write(t, "[ssh]\nport = \"twenty-two\"\n"))
	if err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("want an error naming port, got %v", err)
	}
	_, err = Load(write(t, "[ssh]\nconnect_timeout = \"soon\"\n"))
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("want an error naming the bad duration, got %v", err)
	}
}

func TestValidateReportsEveryProblemWithItsField(t *testing.T) {
	s := Default()
	s.StateDir = "relative"
	s.Instance.AMI = "ubuntu"
	s.Instance.SecurityGroupIDs = []string{"default"}
	s.Instance.MetadataHopLimit = 0
	s.SSH.Address = "elastic"
	s.SSH.User = "root"
	s.Job.BuildsDir = "/"
	err := s.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, field := range []string{"state_dir:", "instance.ami:", "instance.subnet_id:", "instance.security_group_ids:",
		"instance.metadata_hop_limit:", "ssh.address:", "ssh.user:", "job.builds_dir:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("missing %s in:\n%v", field, err)
		}
	}
}

func TestValidateRejectsReservedTagPrefix(t *testing.T) {
	s, err := Load(write(t, validTOML))
	if err != nil {
		t.Fatal(err)
	}
	s.Instance.Tags = map[string]string{"ec2-executor:job-key": "spoof"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "instance.tags") {
		t.Fatalf("want instance.tags error, got %v", err)
	}
}

// TestReferenceDocumentsEveryKey fails when a settings key is missing from docs/settings.md.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/settings.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/settings.md does not document `%s`", key)
		}
	}
}

func TestKeysWalksNestedTables(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, want := range []string{"manager_id", "aws.endpoint", "instance.security_group_ids", "ssh.connect_timeout", "job.cache_dir"} {
		if !strings.Contains(keys, want) {
			t.Errorf("Keys() lacks %s: %s", want, keys)
		}
	}
	if strings.Contains(keys, "Duration") {
		t.Errorf("Keys() descended into Duration: %s", keys)
	}
}
