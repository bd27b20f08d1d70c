package cloudinit

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMergeJSON runs the merge script the worker runs, with the worker's python3, on
// what an AMI may already have in /etc/docker/daemon.json.
func TestMergeJSON(t *testing.T) {
	requireTool(t, "python3")
	cases := []struct {
		name, existing, fragment, want, printed string
	}{
		{"no file on the AMI", "", `{"registry-mirrors":["http://m:5001"]}`, `{"registry-mirrors":["http://m:5001"]}`, "changed"},
		{"keeps the AMI's keys", `{"log-driver":"journald","data-root":"/data"}`, `{"registry-mirrors":["http://m"]}`,
			`{"data-root":"/data","log-driver":"journald","registry-mirrors":["http://m"]}`, "changed"},
		{"lists: ours first, theirs kept", `{"registry-mirrors":["http://old","http://m"]}`, `{"registry-mirrors":["http://m","http://new"]}`,
			`{"registry-mirrors":["http://m","http://new","http://old"]}`, "changed"},
		{"objects merge deeply", `{"log-opts":{"max-file":"3"}}`, `{"log-opts":{"max-size":"50m"}}`,
			`{"log-opts":{"max-file":"3","max-size":"50m"}}`, "changed"},
		{"scalars: ours win", `{"log-driver":"journald"}`, `{"log-driver":"json-file"}`, `{"log-driver":"json-file"}`, "changed"},
		{"already merged: untouched", `{"registry-mirrors":["http://m"],"debug":true}`, `{"registry-mirrors":["http://m"]}`,
			`{"registry-mirrors":["http://m"],"debug":true}`, "unchanged"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "docker", "daemon.json")
			if c.existing != "" {
				write(t, target, c.existing)
			}
			frag := write(t, filepath.Join(dir, "fragment.json"), c.fragment)
			out := runMerge(t, frag, target)
			if out != c.printed {
				t.Fatalf("printed %q, want %q", out, c.printed)
			}
			assertJSON(t, target, c.want)
			if st, _ := os.Stat(target); c.printed == "changed" && st.Mode().Perm() != 0o644 {
				t.Fatalf("mode %v", st.Mode())
			}
		})
	}
}

func TestMergeJSONRefusesACorruptTarget(t *testing.T) {
	requireTool(t, "python3")
	dir := t.TempDir()
	target := write(t, filepath.Join(dir, "daemon.json"), `{"debug": tru`)
	cmd := exec.Command("python3", "-c", mergeJSON, write(t, filepath.Join(dir, "f.json"), `{}`), target, "0644")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not valid JSON") {
		t.Fatalf("want a refusal naming the file, got %v: %s", err, out)
	}
}

func runMerge(t *testing.T, frag, target string) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", mergeJSON, frag, target, "0644").CombinedOutput()
	if err != nil {
		t.Fatalf("merge-json: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertJSON(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	_ = json.Unmarshal([]byte(want), &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("%s = %s, want %s", path, b, want)
	}
}

// TestInstallIfMissing runs the install script with stand-in package managers on PATH.
func TestInstallIfMissing(t *testing.T) {
	cases := []struct{ managers, want string }{
		{"dnf apt-get", "dnf install -y docker"},
		{"yum", "yum install -y docker"},
		{"apt-get", "apt-get install -y -q docker.io"},
	}
	for _, c := range cases {
		bin := t.TempDir()
		log := filepath.Join(bin, "calls")
		for _, m := range strings.Fields(c.managers) {
			write(t, filepath.Join(bin, m), "#!/bin/sh\necho "+m+" \"$@\" >> "+log+"\n")
			if err := os.Chmod(filepath.Join(bin, m), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("/bin/sh", "-c", installIfMissing, "install-docker", "docker", "docker", "docker.io")
		cmd.Env = []string{"PATH=" + bin}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c.managers, err, out)
		}
		calls, _ := os.ReadFile(log)
		if !strings.Contains(string(calls), c.want) {
			t.Errorf("with %s: calls %q, want %q", c.managers, calls, c.want)
		}
	}
	// Present already: nothing is installed.
	bin := t.TempDir()
	write(t, filepath.Join(bin, "docker"), "#!/bin/sh\n")
	_ = os.Chmod(filepath.Join(bin, "docker"), 0o755)
	cmd := exec.Command("/bin/sh", "-c", installIfMissing, "install-docker", "docker", "docker", "docker.io")
	cmd.Env = []string{"PATH=" + bin}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker present: %v\n%s", err, out)
	}
}

func TestWorkerScriptsParse(t *testing.T) {
	for name, body := range map[string]string{"install": installIfMissing, "daemon": applyDaemonJSON,
		"start": startDocker, "client": applyClientConfig, "ready": markReady} {
		if out, err := exec.Command("/bin/sh", "-n", "-c", body).CombinedOutput(); err != nil {
			t.Errorf("%s script: %v\n%s", name, err, out)
		}
	}
}
