package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// BootMarkers are the files a worker's first boot writes (cloud-init's runcmd): Ready
// once Docker answers with its final configuration, Failed with the steps that
// failed. A worker is reached only once Ready exists, because a Docker that answers
// earlier may be restarted under the job (Debian's docker.io starts Docker as it
// installs, before the daemon.json merge restarts it).
type BootMarkers struct {
	Ready, Failed string
	// Earlier is where an earlier version wrote Ready (its workers, adopted by a pool
	// after an upgrade, are ready too), or "".
	Earlier string
}

// BootFailedError is a worker whose boot reported a failed step: it never becomes
// ready, so the wait ends at once.
type BootFailedError struct{ Report string }

func (e *BootFailedError) Error() string {
	return "the worker's boot failed: " + strings.TrimSpace(e.Report)
}

// BootReport is what a worker's boot said when it was reached: how long each of
// cloud-init's stages took.
type BootReport struct {
	Stages []StageTime
}

// StageTime is one of cloud-init's stages and how long it ran. Running marks the
// stage still under way when the worker was reached: modules-final, whose runcmd
// writes the readiness marker, usually is.
type StageTime struct {
	Name    string
	Took    time.Duration
	Running bool
}

func (r BootReport) String() string {
	var parts []string
	for _, s := range r.Stages {
		part := fmt.Sprintf("%s %s", s.Name, s.Took.Round(100*time.Millisecond))
		if s.Running {
			part += " so far"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// bootState is one look at the markers: "ready", "failed" or "booting", and what
// goes with it (cloud-init's status.json, the failure report, cloud-init's status).
func bootState(sc *ssh.Client, m BootMarkers) (state, detail string, err error) {
	s, err := sc.NewSession()
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	// Only the first line decides; what follows is best effort (a worker whose AMI
	// keeps no status.json is ready all the same).
	earlier := m.Ready
	if m.Earlier != "" {
		earlier = m.Earlier
	}
	script := fmt.Sprintf(`if [ -s %[2]s ]; then echo failed; cat %[2]s
elif [ -e %[1]s ] || [ -e %[3]s ]; then echo ready; date +%%s.%%N; cat /run/cloud-init/status.json 2>/dev/null
else echo booting; cloud-init status 2>/dev/null; fi; true`, m.Ready, m.Failed, earlier)
	out, err := s.Output(script)
	if err != nil {
		return "", "", fmt.Errorf("reading the worker's boot markers: %w", err)
	}
	state, detail, _ = strings.Cut(string(out), "\n")
	return state, detail, nil
}

// waitBooted polls the markers over sc until the boot is done, has failed or ctx
// ends; the error then says what the worker last said.
func waitBooted(ctx context.Context, sc *ssh.Client, m BootMarkers, every time.Duration) (BootReport, error) {
	for {
		state, detail, err := bootState(sc, m)
		switch {
		case err != nil:
			return BootReport{}, err
		case state == "ready":
			now, status, _ := strings.Cut(detail, "\n")
			at, _ := strconv.ParseFloat(strings.TrimSpace(now), 64)
			return parseStatusAt(status, at), nil
		case state == "failed":
			return BootReport{}, &BootFailedError{Report: detail}
		}
		select {
		case <-ctx.Done():
			status := strings.TrimSpace(detail)
			if status == "" {
				status = "cloud-init status unknown"
			}
			return BootReport{}, fmt.Errorf("the worker answers over SSH but its boot has not finished: no %s (%s)", m.Ready, strings.ReplaceAll(status, "\n", "; "))
		case <-time.After(every):
		}
	}
}

// parseStatusAt reads cloud-init's /run/cloud-init/status.json: each stage's start
// and finish, in the order they ran. now is the worker's clock at the time of
// reading: a stage started but not finished counts as running since its start (with
// now 0, it is left out).
func parseStatusAt(data string, now float64) BootReport {
	var st struct {
		V1 map[string]json.RawMessage `json:"v1"`
	}
	if json.Unmarshal([]byte(data), &st) != nil {
		return BootReport{}
	}
	type stage struct {
		Start    *float64 `json:"start"`
		Finished *float64 `json:"finished"`
	}
	var r BootReport
	starts := map[string]float64{}
	for name, raw := range st.V1 {
		var s stage
		if json.Unmarshal(raw, &s) != nil || s.Start == nil {
			continue
		}
		end, running := now, true
		if s.Finished != nil {
			end, running = *s.Finished, false
		} else if now <= *s.Start {
			continue
		}
		starts[name] = *s.Start
		r.Stages = append(r.Stages, StageTime{Name: name, Took: time.Duration((end - *s.Start) * float64(time.Second)), Running: running})
	}
	sort.Slice(r.Stages, func(i, j int) bool { return starts[r.Stages[i].Name] < starts[r.Stages[j].Name] })
	return r
}
