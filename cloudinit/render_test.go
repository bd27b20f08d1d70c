package cloudinit

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixed placeholder keys keep the golden file stable.
var worker = Worker{
	User:           "ec2-executor",
	AuthorizedKey:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHAVTauu0zNhk+guPVdxrTw4J+JhnZGvq6ejqTFXJeLw client",
	HostPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n",
	HostPublicKey:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIARVj4OI9rm+DZ5eOJRVNxfpqml9OYpot/ntHPX05Eog host",
}

func TestRenderMatchesGolden(t *testing.T) {
	got, err := Render(worker)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "worker.yaml")
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

func TestRenderRejectsBadKeys(t *testing.T) {
	w := worker
	w.AuthorizedKey = "not a key"
	w.User = ""
	_, err := Render(w)
	if err == nil || !strings.Contains(err.Error(), "authorized key") || !strings.Contains(err.Error(), "user is empty") {
		t.Fatalf("want both problems named, got %v", err)
	}
}

// TestRenderPassesCloudInitSchema runs the real validator when it is installed; `make
// test` installs it with the stack, so there it always runs.
func TestRenderPassesCloudInitSchema(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		if os.Getenv("EC2X_REQUIRE_CLOUD_INIT") != "" {
			t.Fatal("cloud-init is required but not installed")
		}
		t.Skip("cloud-init not installed (the e2e suite validates every launched instance's user data)")
	}
	got, err := Render(worker)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(p, got, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cloud-init", "schema", "--config-file", p).CombinedOutput(); err != nil {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
}
