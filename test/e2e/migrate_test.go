//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ec2-executor/ec2-executor/test/stack"
)

// TestMigratedDaemonJSONStartsDebiansDockerd: for every migrate fixture, the
// daemon.json fragment the migrated settings give a worker (render-cloud-init's)
// starts Debian's dockerd, in a network namespace of its own. Debian's 20.10 has no
// `dockerd --validate`, so the daemon itself is the check: a key of the wrong type
// makes it exit at once, as it would on every worker.
func TestMigratedDaemonJSONStartsDebiansDockerd(t *testing.T) {
	fixtures, _ := filepath.Glob("../../migrate/testdata/*.toml")
	checked := 0
	for _, fixture := range fixtures {
		out := t.TempDir()
		if b, err := exec.Command(binary, "migrate", "--runner-config", fixture, "--out", out).CombinedOutput(); err != nil {
			t.Fatalf("migrate %s: %v\n%s", fixture, err, b)
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.toml"))
		for _, f := range files {
			if filepath.Base(f) == "config.toml" {
				continue
			}
			fragment := daemonFragment(t, f)
			if fragment == "" {
				continue
			}
			t.Logf("%s: %s", filepath.Base(f), strings.Join(strings.Fields(fragment), " "))
			if err := startDockerdWith(t, fragment); err != nil {
				t.Errorf("%s (from %s): dockerd refuses its daemon.json: %v", filepath.Base(f), filepath.Base(fixture), err)
			}
			checked++
		}
	}
	if checked < 2 {
		t.Errorf("only %d migrated settings carried daemon options: the fixtures no longer test this", checked)
	}
}

var sgPlaceholder = regexp.MustCompile(`sg-REPLACE-ME-[A-Za-z0-9-]+`)

// daemonFragment fills the settings file's placeholders and returns the
// daemon.json the worker's cloud-config writes, "" when it writes none.
func daemonFragment(t *testing.T, settingsFile string) string {
	t.Helper()
	b, err := os.ReadFile(settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settingsFile, sgPlaceholder.ReplaceAll(b, []byte("sg-0123456789abcdef0")), 0o600); err != nil {
		t.Fatal(err)
	}
	doc, err := exec.Command(binary, "render-cloud-init", "--config", settingsFile).Output()
	if err != nil {
		t.Fatalf("render-cloud-init %s: %v", settingsFile, err)
	}
	var cfg struct {
		WriteFiles []struct{ Path, Content string } `yaml:"write_files"`
	}
	if err := yaml.Unmarshal(doc, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.WriteFiles {
		if f.Path == "/etc/ec2-executor/daemon.json" {
			return f.Content
		}
	}
	return ""
}

// startDockerdWith runs Debian's dockerd with the fragment as its config file until
// its API answers (nil) or it exits (its complaint).
func startDockerdWith(t *testing.T, fragment string) error {
	t.Helper()
	dir, err := os.MkdirTemp("", "ec2x-daemonjson")
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("ec2x-dj-%d", time.Now().UnixNano()%1e8)
	defer func() {
		for _, m := range stack.MountsUnder(dir) {
			_ = exec.Command("umount", "-l", m).Run()
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = os.RemoveAll(dir)
	}()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %s", out)
	}
	config := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(config, []byte(fragment), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, "/usr/sbin/dockerd", "--config-file", config,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"),
		"-H", "unix://"+sock)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("dockerd exited (%v):\n%s", err, lastLines(log.String(), 5))
		case <-time.After(200 * time.Millisecond):
		}
		if exec.Command("docker", "-H", "unix://"+sock, "version").Run() == nil {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dockerd did not answer within a minute:\n%s", lastLines(log.String(), 5))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
