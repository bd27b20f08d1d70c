package stages

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/statefile"
	"github.com/ec2-executor/ec2-executor/workers"
)

// A spot worker's reclaim is announced two minutes ahead inside the instance only.
// The job's holder, which keeps the job's SSH connection, reads the worker's
// instance metadata every spotPoll (engine.Metadata) and writes what EC2 announced
// to <state>/jobs/<key>.spot; the run stage that streams the script shows it in the
// job log within a second, since only the stage processes write there. A reclaim is
// recorded for the breaker and for the job's retry, which launches on demand.

// spotPoll is how often the holder reads a spot worker's metadata: a notice comes
// two minutes ahead, and the job log shows it within 10 s.
const spotPoll = 5 * time.Second

// The notices a job log shows, each once.
const (
	spotReclaim   = "reclaim"
	spotRebalance = "rebalance"
)

// spotNote is what the holder saw, for the run stages.
type spotNote struct {
	InstanceID string            `json:"instance"`
	Notice     engine.SpotNotice `json:"notice"`
}

func (d *Driver) spotPath(key string) string { return filepath.Join(d.store().Dir, key+".spot") }

// watchSpot reads a spot worker's metadata until EC2 announces its reclaim or ctx
// ends.
func (d *Driver) watchSpot(ctx context.Context, w *engine.Worker, st State) {
	if !st.Spot {
		return
	}
	md, err := w.Metadata()
	if err != nil {
		return
	}
	failing := 0
	tick := time.NewTicker(spotPoll)
	defer tick.Stop()
	var last engine.SpotNotice
	for {
		n, err := md.SpotNotice(ctx)
		switch {
		case err != nil:
			if failing++; failing == 3 {
				d.Log.Warn("Cannot read the spot worker's instance metadata: EC2's reclaim notices will not show", "instance_id", st.InstanceID, "error", err)
			}
		case n != last:
			failing, last = 0, n
			d.noteSpot(st, n)
			if n.Reclaim() {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// noteSpot hands a notice to the run stages and records a reclaim. A job whose
// cleanup already removed its state gets none (it would outlive the job).
func (d *Driver) noteSpot(st State, n engine.SpotNotice) {
	if _, err := os.Stat(d.store().path(st.JobKey)); err != nil {
		return
	}
	if err := statefile.Write(d.spotPath(st.JobKey), spotNote{InstanceID: st.InstanceID, Notice: n}); err != nil {
		d.Log.Warn("Could not hand the spot notice to the job's stages", "error", err)
	}
	if n.Reclaim() {
		d.recordReclaim(st)
	}
}

// recordReclaim adds the job's worker to the record of spot reclaims.
func (d *Driver) recordReclaim(st State) {
	in := workers.Interruption{At: d.Now().UTC(), InstanceID: st.InstanceID, Type: st.Type, Zone: st.Zone,
		ProjectID: st.ProjectID, PipelineID: st.PipelineID, JobName: st.JobName, JobID: st.JobID}
	if err := workers.RecordInterruption(d.Settings.StateDir, in); err != nil {
		d.Log.Warn("Could not record the spot reclaim", "error", err)
	}
}

// showSpot shows the notices the holder handed over that the job log has not shown
// yet, every second until stop is closed.
func (d *Driver) showSpot(st *State, stop <-chan struct{}) {
	if !st.Spot {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		d.showSpotOnce(st)
		select {
		case <-stop:
			d.showSpotOnce(st) // a notice just before the worker went
			return
		case <-tick.C:
		}
	}
}

func (d *Driver) showSpotOnce(st *State) {
	b, err := os.ReadFile(d.spotPath(st.JobKey))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var note spotNote
	if err != nil || json.Unmarshal(b, &note) != nil {
		return // half a notice: the holder replaces it whole (statefile), next second
	}
	n, shown := note.Notice, len(st.SpotShown)
	if !n.Rebalance.IsZero() && !slices.Contains(st.SpotShown, spotRebalance) {
		d.Log.Warn("EC2 recommends rebalancing spot worker "+note.InstanceID+": it is at elevated risk of being reclaimed (notice at "+clock(n.Rebalance)+")",
			"instance_id", note.InstanceID)
		st.SpotShown = append(st.SpotShown, spotRebalance)
	}
	if n.Reclaim() && !slices.Contains(st.SpotShown, spotReclaim) {
		d.Log.Warn("EC2 will reclaim spot worker "+note.InstanceID+" at "+clock(n.Time)+" (spot instance action: "+n.Action+
			"); if the job has not finished by then it fails as a system failure, and its retry launches on-demand", "instance_id", note.InstanceID)
		st.SpotShown = append(st.SpotShown, spotReclaim)
	}
	if len(st.SpotShown) != shown {
		if err := d.store().Save(*st); err != nil {
			d.Log.Warn("Could not record the spot notice as shown", "error", err)
		}
	}
}

// spotNoticed shows the notices no stage has shown yet (one that came after the
// last script) and reports whether the job's worker had any.
func (d *Driver) spotNoticed(st *State) bool {
	if !st.Spot {
		return false
	}
	d.showSpotOnce(st)
	_, err := os.Stat(d.spotPath(st.JobKey))
	return err == nil
}

// clock is t as EC2's notices give it, to the second in UTC.
func clock(t time.Time) string { return t.UTC().Format(time.TimeOnly) + "Z" }

// onDemandRetry launches a retried job on demand when an earlier attempt of it lost
// its spot worker to a reclaim: spot again would likely meet the same shortage.
func (d *Driver) onDemandRetry(in settings.Instance, job workers.Job) settings.Instance {
	if in.Market == settings.MarketOnDemand {
		return in
	}
	ins, err := workers.Interruptions(d.Settings.StateDir, d.Now().Add(-24*time.Hour))
	if err != nil {
		d.Log.Warn("Could not read the record of spot reclaims: this job launches as configured", "error", err)
		return in
	}
	prev, ok := workers.EarlierAttempt(ins, job)
	if !ok {
		return in
	}
	d.Log.Warn("An earlier attempt of this job (job "+prev.JobID+") lost spot worker "+prev.InstanceID+" when EC2 reclaimed it: this attempt launches on-demand",
		"instance_id", prev.InstanceID)
	in.Market, in.SpotMaxPrice = settings.MarketOnDemand, ""
	return in
}
