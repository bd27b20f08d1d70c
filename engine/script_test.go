package engine

import (
	"testing"

	"github.com/docker/docker/api/types/container"
)

// A restarted container's log is followed from its last run's end, so a stage
// never shows the previous run's entrypoint output; a container that never ran is
// followed from its first line.
func TestLastEnd(t *testing.T) {
	for _, c := range []struct {
		state *container.State
		want  string
	}{
		{nil, ""},
		{&container.State{Status: "created", FinishedAt: "0001-01-01T00:00:00Z"}, ""},
		{&container.State{Status: "exited", FinishedAt: "2026-12-01T20:47:10.123456789Z"}, "2026-12-01T20:47:10.123456789Z"},
	} {
		if got := lastEnd(c.state); got != c.want {
			t.Errorf("lastEnd(%+v) = %q, want %q", c.state, got, c.want)
		}
	}
}
