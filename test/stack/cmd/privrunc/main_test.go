package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestOnlyWhatTheBoundingSetLacksIsDropped: with this machine's bounding set
// (every capability but CAP_SYS_RESOURCE), only that one goes.
func TestOnlyWhatTheBoundingSetLacksIsDropped(t *testing.T) {
	const machine = 0x1fffeffffff
	dir := t.TempDir()
	caps := map[string]any{"bounding": []string{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"}, "effective": []string{"CAP_SYS_RESOURCE"}}
	write := func(name string, doc any) string {
		b, _ := json.Marshal(doc)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string, nested bool) map[string][]string {
		b, _ := os.ReadFile(p)
		var doc struct {
			Process      struct{ Capabilities map[string][]string }
			Capabilities map[string][]string
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if nested {
			return doc.Process.Capabilities
		}
		return doc.Capabilities
	}
	config := write("config.json", map[string]any{"ociVersion": "1.0.2", "process": map[string]any{"capabilities": caps}})
	if err := rewrite([]string{"--root", "/run/x", "--log", "/l.json", "--log-format", "json", "create", "--bundle", dir, "--pid-file", "p", "abc"}, machine); err != nil {
		t.Fatal(err)
	}
	got := read(config, true)
	if !slices.Equal(got["bounding"], []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}) || len(got["effective"]) != 0 {
		t.Errorf("create left %v", got)
	}
	proc := write("process.json", map[string]any{"capabilities": caps})
	if err := rewrite([]string{"--root", "/run/x", "exec", "--process", proc, "--detach", "abc"}, machine); err != nil {
		t.Fatal(err)
	}
	if got := read(proc, false); slices.Contains(got["bounding"], "CAP_SYS_RESOURCE") || len(got["bounding"]) != 2 {
		t.Errorf("exec left %v", got)
	}
	if err := rewrite([]string{"--root", "/run/x", "state", "abc"}, machine); err != nil {
		t.Errorf("a command without a spec: %v", err)
	}
}
