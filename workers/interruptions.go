package workers

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// The manager remembers the spot workers EC2 reclaimed, in an append-only record
// beside the jobs' state, for two decisions every launch makes: a retried job whose
// earlier attempt lost its spot worker goes on demand (spot again would likely meet
// the same shortage), and a type that keeps being reclaimed in one zone is launched
// on demand there for a while (the breaker, instance.spot_interruptions_*).

// Interruption is one spot worker that EC2 announced it would reclaim, or reclaimed.
type Interruption struct {
	At         time.Time `json:"at"`
	InstanceID string    `json:"instance"`
	Type       string    `json:"type"`
	Zone       string    `json:"zone"`
	// The job that ran on it, to know its retries by (a retry has a job id of its
	// own, and the same project, pipeline and name).
	ProjectID  string `json:"project,omitempty"`
	PipelineID string `json:"pipeline,omitempty"`
	JobName    string `json:"job_name,omitempty"`
	JobID      string `json:"job,omitempty"`
}

// InterruptionsPath is the record under a state directory.
func InterruptionsPath(stateDir string) string {
	return filepath.Join(stateDir, "spot-interruptions.jsonl")
}

// RecordInterruption adds one reclaim to the record. The holder that read EC2's
// notice and the stage that found the worker gone may both record one worker:
// readers count it once.
func RecordInterruption(stateDir string, in Interruption) error {
	return statefile.AppendLine(InterruptionsPath(stateDir), in)
}

// Interruptions reads the reclaims recorded since since, one per instance, oldest
// first. A missing record is an empty one; a torn last line (a process killed as it
// wrote) is skipped.
func Interruptions(stateDir string, since time.Time) ([]Interruption, error) {
	f, err := os.Open(InterruptionsPath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []Interruption
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var in Interruption
		if json.Unmarshal(sc.Bytes(), &in) != nil || in.At.Before(since) || seen[in.InstanceID] {
			continue
		}
		seen[in.InstanceID] = true
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Interruption) int { return a.At.Compare(b.At) })
	return out, sc.Err()
}

// EarlierAttempt returns the reclaim that an earlier attempt of job suffered, if any:
// the same project, pipeline and job name, another job id.
func EarlierAttempt(ins []Interruption, job Job) (Interruption, bool) {
	if job.PipelineID == "" || job.Name == "" {
		return Interruption{}, false
	}
	for i := len(ins) - 1; i >= 0; i-- {
		in := ins[i]
		if in.ProjectID == job.ProjectID && in.PipelineID == job.PipelineID && in.JobName == job.Name && in.JobID != job.ID {
			return in, true
		}
	}
	return Interruption{}, false
}

// Breaker is an open spot breaker: launches of Type in Zone skip spot until Until.
type Breaker struct {
	Type, Zone string
	Until      time.Time
	// Count reclaims within Window tripped it.
	Count  int
	Window time.Duration
}

// OpenBreakers lists the breakers open at now: each type and zone whose latest
// reclaim completed limit reclaims within window, less than cooldown ago.
func OpenBreakers(ins []Interruption, limit int, window, cooldown time.Duration, now time.Time) []Breaker {
	if limit <= 0 {
		return nil
	}
	type key struct{ typ, zone string }
	times := map[key][]time.Time{}
	for _, in := range ins {
		k := key{in.Type, in.Zone}
		times[k] = append(times[k], in.At) // oldest first
	}
	var out []Breaker
	for k, ts := range times {
		for last := len(ts) - 1; last >= limit-1; last-- {
			if ts[last].Sub(ts[last-limit+1]) > window {
				continue
			}
			if until := ts[last].Add(cooldown); now.Before(until) {
				out = append(out, Breaker{Type: k.typ, Zone: k.zone, Until: until, Count: limit, Window: window})
			}
			break
		}
	}
	slices.SortFunc(out, func(a, b Breaker) int { return a.Until.Compare(b.Until) })
	return out
}
