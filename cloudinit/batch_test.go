package cloudinit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// batchWorkers are three workers with distinct placeholder keys.
func batchWorkers() []Login {
	var ws []Login
	for i := range 3 {
		w := worker
		w.AuthorizedKey = fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClient%dKeyForTheBatchTest client", i)
		w.HostPublicKey = fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost%dKeyForTheBatchTestXX host", i)
		ws = append(ws, w)
	}
	return ws
}

// cloudInitParts runs cloud-init's own user-data processing and launch-index filter
// on data, as an instance with launch index idx would, and prints the cloud-config
// parts it keeps, separated by a line of dashes.
const cloudInitParts = `import sys
from cloudinit import helpers, user_data
from cloudinit.filters import launch_index
msg = user_data.UserDataProcessor(helpers.Paths({})).process(open(sys.argv[1], "rb").read())
msg = launch_index.Filter(int(sys.argv[2])).apply(msg)
parts = [p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/cloud-config"]
print("\n-----\n".join(parts))
`

func TestABatchGivesEachLaunchIndexItsOwnKeys(t *testing.T) {
	requireTool(t, "cloud-init")
	ws := batchWorkers()
	data, err := RenderBatch(ws, full)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "user-data")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		out, err := exec.Command("/usr/bin/python3", "-c", cloudInitParts, p, fmt.Sprint(i)).CombinedOutput()
		if err != nil {
			t.Fatalf("cloud-init's user-data processing: %v\n%s", err, out)
		}
		parts := strings.Split(string(out), "\n-----\n")
		if len(parts) != 2 || !strings.Contains(parts[0], "runcmd:") || strings.Contains(parts[0], "ssh_keys") {
			t.Fatalf("index %d: want the shared part and one key part, got %d parts:\n%s", i, len(parts), out)
		}
		if !strings.Contains(parts[1], w.HostPublicKey) || !strings.Contains(parts[1], w.AuthorizedKey) {
			t.Errorf("index %d got another worker's keys:\n%s", i, parts[1])
		}
		for j, part := range parts { // each part is a valid cloud-config on its own
			f := filepath.Join(dir, fmt.Sprintf("part-%d-%d", i, j))
			if err := os.WriteFile(f, []byte(part), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput(); err != nil {
				t.Errorf("part %d for index %d: %v\n%s", j, i, err, out)
			}
		}
	}
}

func TestABatchThatDoesNotFitSaysSo(t *testing.T) {
	ws := make([]Login, 40)
	for i := range ws {
		ws[i] = worker
	}
	if _, err := RenderBatch(ws, full); err == nil || !strings.Contains(err.Error(), "40 workers take") {
		t.Fatalf("got %v", err)
	}
}
