package stages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/statefile"
	"github.com/ec2-executor/ec2-executor/workers"
)

// ErrNoState means no state file exists for the job: prepare never got as far as
// saving one, or cleanup already removed it. It is the reaper's ErrNoJobState.
var ErrNoState = workers.ErrNoJobState

// State is what one job's stage processes hand to each other. It holds the client's
// private SSH key, so it is only ever written 0600.
type State struct {
	JobKey    string    `json:"job_key"`
	JobID     string    `json:"job_id"`
	CreatedAt time.Time `json:"created_at"`
	// ProjectID, PipelineID and JobName tell the job's retries (a spot reclaim
	// sends them on demand).
	ProjectID  string `json:"project_id,omitempty"`
	PipelineID string `json:"pipeline_id,omitempty"`
	JobName    string `json:"job_name,omitempty"`
	// Lease is the job's worker (its fields sit at the top level of the file).
	workers.Lease
	Image          string `json:"image,omitempty"`
	BuildContainer string `json:"build_container,omitempty"`
	// HelperContainer runs the predefined stages (git, cache, artifacts).
	HelperContainer string `json:"helper_container,omitempty"`
	// Shown lists the job containers whose start output (the image's entrypoint) a
	// stage has shown: only the first stage of each shows it (engine.Worker.Ready).
	Shown []string `json:"shown,omitempty"`
	// Unreachable says a stage already lost the worker: the job has failed, and later
	// stages (after_script, cleanup_file_variables) try only briefly to reach it.
	Unreachable bool `json:"unreachable,omitempty"`
	// SpotShown lists the spot notices (spotReclaim, spotRebalance) a run stage
	// has shown in the job log, so that each shows once.
	SpotShown []string `json:"spot_shown,omitempty"`
}

// Store keeps one state file per job key in a directory.
type Store struct{ Dir string }

func (s Store) path(key string) string { return filepath.Join(s.Dir, key+".json") }

// Save writes st (statefile: 0600, atomic, synced), so a process killed mid-write
// leaves the previous state, never half a file.
func (s Store) Save(st State) error {
	if err := statefile.Write(s.path(st.JobKey), st); err != nil {
		return fmt.Errorf("saving job state: %w", err)
	}
	return nil
}

// Load reads the job's state. A missing file is ErrNoState; a corrupt one is an error
// naming the file (never its content).
func (s Store) Load(key string) (State, error) {
	p := s.path(key)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, fmt.Errorf("%w for job %s (looked for %s)", ErrNoState, key, p)
	}
	if err != nil {
		return State{}, fmt.Errorf("reading job state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("job state file %s is corrupt (%s)", p, jsonProblem(err))
	}
	if st.JobKey != key {
		return State{}, fmt.Errorf("job state file %s belongs to job %q, not %q", p, st.JobKey, key)
	}
	return st, nil
}

// Remove deletes the job's state; a missing file is fine.
func (s Store) Remove(key string) error {
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing job state: %w", err)
	}
	return nil
}
