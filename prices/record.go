package prices

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// Job is one job's line in the manager's cost record.
type Job struct {
	At       time.Time `json:"at"` // when its cleanup ended the job's hold on the worker
	Project  string    `json:"project"`
	Pipeline string    `json:"pipeline"`
	JobID    string    `json:"job"`
	Instance string    `json:"instance"`
	Type     string    `json:"type"`
	Market   string    `json:"market"`
	Zone     string    `json:"zone,omitempty"`
	Seconds  float64   `json:"seconds"`
	// Dollars is nil when the price was unknown.
	Dollars *float64 `json:"dollars,omitempty"`
}

// RecordPath is the cost record under a state directory.
func RecordPath(stateDir string) string { return filepath.Join(stateDir, "costs.jsonl") }

// Append adds j to the record at path (statefile.AppendLine).
func Append(path string, j Job) error { return statefile.AppendLine(path, j) }

// Total is the cost of a group of jobs.
type Total struct {
	Project, Pipeline string
	Jobs, Unknown     int // Unknown: jobs whose price was not known (not in Dollars)
	Seconds, Dollars  float64
}

// Sum reads the record at path and totals the jobs since since by project and
// pipeline, the dearest first. A missing record is no jobs.
func Sum(path string, since time.Time) ([]Total, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	totals := map[[2]string]*Total{}
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 && (err == nil || err == io.EOF) {
			var j Job
			if jerr := json.Unmarshal(line, &j); jerr != nil {
				if err == io.EOF { // a line cut short by a crash while it was written
					break
				}
				return nil, fmt.Errorf("%s line %d: %w", path, n, jerr)
			}
			if !j.At.Before(since) {
				add(totals, j)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]Total, 0, len(totals))
	for _, t := range totals {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Total) int {
		if a.Dollars != b.Dollars {
			if a.Dollars > b.Dollars {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Project+"/"+a.Pipeline, b.Project+"/"+b.Pipeline)
	})
	return out, nil
}

func add(totals map[[2]string]*Total, j Job) {
	k := [2]string{j.Project, j.Pipeline}
	t := totals[k]
	if t == nil {
		t = &Total{Project: j.Project, Pipeline: j.Pipeline}
		totals[k] = t
	}
	t.Jobs++
	t.Seconds += j.Seconds
	if j.Dollars == nil {
		t.Unknown++
	} else {
		t.Dollars += *j.Dollars
	}
}

// Dollars formats an amount with the precision it needs: four decimals, or six
// for the fractions of a cent a short job costs.
func Dollars(v float64) string {
	if v != 0 && v < 0.01 {
		return fmt.Sprintf("$%.6f", v)
	}
	return fmt.Sprintf("$%.4f", v)
}
