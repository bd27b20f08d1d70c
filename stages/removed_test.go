package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// The holder's end: saves of the job's state (which replace the file) do not end
// it, other jobs' files do not either, and the state's removal does, at once.
func TestStateRemovedSeesTheRemovalNotTheSaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "1-a.json")
	if err := statefile.Write(path, map[string]int{"save": 0}); err != nil {
		t.Fatal(err)
	}
	gone := stateRemoved(t.Context(), path)
	for i := range 5 {
		_ = statefile.Write(path, map[string]int{"save": i + 1})
		_ = statefile.Write(filepath.Join(dir, "2-b.json"), map[string]int{"other": i})
	}
	_ = os.Remove(filepath.Join(dir, "2-b.json"))
	select {
	case <-gone:
		t.Fatal("ended while the state stayed")
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	_ = os.Remove(path)
	select {
	case <-gone:
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("saw the removal after %s", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("did not see the removal")
	}
}

func TestStateRemovedEndsWithItsContextOrAMissingFile(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	path := filepath.Join(t.TempDir(), "1-a.json")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := stateRemoved(ctx, path)
	cancel()
	select {
	case <-gone:
	case <-time.After(2 * time.Second):
		t.Fatal("did not end with its context")
	}
	select {
	case <-stateRemoved(t.Context(), filepath.Join(t.TempDir(), "never")):
	case <-time.After(2 * time.Second):
		t.Fatal("waited on a file that was never there")
	}
}
