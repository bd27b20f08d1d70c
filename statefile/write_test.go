package statefile

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplacesAtomicallyWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "state.json")
	for _, v := range []map[string]string{{"key": "first"}, {"key": "second"}} {
		if err := Write(path, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	var got map[string]string
	if err == nil {
		err = json.Unmarshal(b, &got)
	}
	if err != nil || got["key"] != "second" {
		t.Fatalf("read back %v, %v", got, err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{false: 0o600, true: 0o700}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// A value that cannot be encoded is an error naming the file, and the old file stays.
func TestAnUnencodableValueLeavesTheOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := Write(path, map[string]string{"key": "kept"}); err != nil {
		t.Fatal(err)
	}
	err := Write(path, map[string]float64{"key": math.NaN()})
	if err == nil || !strings.Contains(err.Error(), "encoding "+path) {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "kept") {
		t.Fatalf("the old file is now %q", b)
	}
}
