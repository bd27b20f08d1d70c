package cloudinit

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ec2-executor/ec2-executor/settings"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixed placeholder keys keep the golden file stable.
var worker = Login{
	User:           "ec2-executor",
	AuthorizedKey:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHAVTauu0zNhk+guPVdxrTw4J+JhnZGvq6ejqTFXJeLw client",
	HostPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n",
	HostPublicKey:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIARVj4OI9rm+DZ5eOJRVNxfpqml9OYpot/ntHPX05Eog host",
}

// full exercises every option an operator can set.
var full = Options{Worker: settings.Worker{
	ECRCredentialHelper: true,
	ECRRegistries:       []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com"},
	RegistryMirrors:     []string{"https://mirror.internal:5000"},
	InsecureRegistries:  []string{"10.0.0.0/8"},
	DaemonOptions:       map[string]any{"log-driver": "json-file", "log-opts": map[string]any{"max-size": "50m"}},
	Packages:            []string{"jq"},
	Runcmd:              []string{"echo operator-runcmd"},
	WriteFiles:          []File{{Path: "/etc/motd", Content: "CI worker\n", Permissions: "0644"}},
	ExtraCloudConfig:    "#cloud-config\ntimezone: Europe/Berlin\nruncmd:\n  - echo from-extra-part\nwrite_files:\n  - path: /etc/extra\n    content: x\n",
}, InJobECR: true}

var goldens = map[string]Options{"worker.yaml": {}, "worker-full.yaml": full}

func TestRenderMatchesGolden(t *testing.T) {
	for name, opts := range goldens {
		got, err := Render(worker, opts)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("rendered cloud-config differs from %s (run go test -update):\n%s", golden, got)
		}
	}
}

func TestRenderRejectsBadKeys(t *testing.T) {
	w := worker
	w.AuthorizedKey = "not a key"
	w.User = ""
	_, err := Render(w, Options{})
	if err == nil || !strings.Contains(err.Error(), "authorized key") || !strings.Contains(err.Error(), "user is empty") {
		t.Fatalf("want both problems named, got %v", err)
	}
}

// decoded is the part of a rendered document the tests look into.
type decoded struct {
	Users      []any
	Packages   []string
	Timezone   string
	WriteFiles []struct{ Path, Content, Permissions string } `yaml:"write_files"`
	Runcmd     []any
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	var d decoded
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFullOptionsWriteValidJSONAndKeepReadinessLast(t *testing.T) {
	b, err := Render(worker, full)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, b)
	files := map[string]string{}
	for _, f := range d.WriteFiles {
		files[f.Path] = f.Content
	}
	var daemon struct {
		Mirrors  []string `json:"registry-mirrors"`
		Insecure []string `json:"insecure-registries"`
		Driver   string   `json:"log-driver"`
	}
	if err := json.Unmarshal([]byte(files[DaemonFragmentPath]), &daemon); err != nil || daemon.Mirrors[0] != full.RegistryMirrors[0] || daemon.Driver != "json-file" {
		t.Fatalf("daemon fragment %q: %v", files[DaemonFragmentPath], err)
	}
	var client struct{ CredHelpers map[string]string }
	if err := json.Unmarshal([]byte(files[ConfigFragmentPath]), &client); err != nil || client.CredHelpers[full.ECRRegistries[0]] != "ecr-login" {
		t.Fatalf("client fragment %q: %v", files[ConfigFragmentPath], err)
	}
	if files[JobDockerDir+"/config.json"] != files[ConfigFragmentPath] || !strings.Contains(string(b), "copy-ecr-helper") {
		t.Fatalf("in-job ECR config or helper copy missing")
	}
	if files[MergeJSONPath] != mergeJSON || files["/etc/motd"] == "" || files["/etc/extra"] != "x" || d.Timezone != "Europe/Berlin" || d.Packages[0] != "jq" {
		t.Fatalf("operator additions missing: %+v", d)
	}
	n := len(d.Runcmd)
	last, _ := d.Runcmd[n-1].([]any)
	if len(last) < 4 || last[3] != "mark-ready" || d.Runcmd[n-2] != "echo from-extra-part" || d.Runcmd[n-3] != "echo operator-runcmd" {
		t.Fatalf("runcmd order: %v", d.Runcmd)
	}
}

func TestExtraPartMayNotTakeOverManagedKeys(t *testing.T) {
	cases := map[string]string{
		"users:\n  - name: root\n":                             `sets "users"`,
		"ssh_keys:\n  rsa_private: x\n":                        `sets "ssh_keys"`,
		"write_files:\n  - path: " + DaemonFragmentPath + "\n": "already written",
		"runcmd: echo hi\n":                                    `"runcmd" must be a list`,
		"- just\n- a list\n":                                   "must be a mapping",
		"runcmd: [unterminated\n":                              "not valid YAML",
	}
	for extra, want := range cases {
		o := full
		o.ExtraCloudConfig = extra
		if _, err := Render(worker, o); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "worker.extra_cloud_config") {
			t.Errorf("extra %q: want %q, got %v", extra, want, err)
		}
	}
	o := full
	o.WriteFiles = []File{{Path: MergeJSONPath, Content: "#!/bin/sh\n"}}
	if _, err := Render(worker, o); err == nil || !strings.Contains(err.Error(), "written twice") {
		t.Errorf("operator file over the merge script: %v", err)
	}
}

func TestRenderRefusesUserDataOverTheLimit(t *testing.T) {
	o := Options{Worker: settings.Worker{WriteFiles: []File{{Path: "/etc/big", Content: strings.Repeat("x", MaxUserData)}}}}
	if _, err := Render(worker, o); err == nil || !strings.Contains(err.Error(), "user-data limit") {
		t.Fatalf("want the size limit named, got %v", err)
	}
}

func TestMinimalWorkerHasNoFragmentsOrMergeScript(t *testing.T) {
	b, err := Render(worker, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "merge-json") || strings.Contains(string(b), "ecr") {
		t.Fatalf("minimal worker got fragments:\n%s", b)
	}
}

// TestRenderPassesCloudInitSchema runs the real validator when it is installed; `make
// test` installs it with the stack, so there it always runs.
func TestRenderPassesCloudInitSchema(t *testing.T) {
	requireTool(t, "cloud-init")
	for name, opts := range goldens {
		got, err := Render(worker, opts)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, got, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cloud-init", "schema", "--config-file", p).CombinedOutput(); err != nil {
			t.Fatalf("cloud-init schema %s: %v\n%s", name, err, out)
		}
	}
}

// requireTool skips without the tool, except where the stack is required (make test).
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("EC2X_REQUIRE_CLOUD_INIT") != "" {
			t.Fatalf("%s is required but not installed", name)
		}
		t.Skipf("%s not installed (make test installs it with the stack)", name)
	}
}
