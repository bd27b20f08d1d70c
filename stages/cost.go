package stages

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/prices"
)

// reportCost says in the job log what its worker cost the job, from the job's
// start to its cleanup (a pooled worker's idle time before is the pool's), and adds
// the job to the manager's cost record for `ec2-executor costs`. A price it cannot
// find is reported as unknown; nothing here fails the cleanup.
func (d *Driver) reportCost(ctx context.Context, c Clients, st State) {
	l := st.Lease
	if l.InstanceID == "" || l.Type == "" || st.CreatedAt.IsZero() {
		return
	}
	served := d.Now().Sub(st.CreatedAt)
	market := "on-demand"
	if l.Spot {
		market = "spot"
	}
	region := d.Settings.AWS.Region // validated: always set
	where := l.Zone
	if where == "" {
		where = region
	}
	v := d.Env.Vars
	rec := prices.Job{At: d.Now().UTC(), Project: v["CI_PROJECT_PATH"], Pipeline: v["CI_PIPELINE_ID"], JobID: v["CI_JOB_ID"],
		Instance: l.InstanceID, Type: l.Type, Market: market, Zone: l.Zone, Seconds: served.Seconds()}
	book := &prices.Book{API: c.Spot, Dir: filepath.Join(d.Settings.StateDir, "prices"), Now: d.Now}
	worker := fmt.Sprintf("%s %s in %s for %s", l.Type, market, where, served.Round(time.Second))
	hourly, source, err := book.Hourly(ctx, region, l.Zone, l.Type, l.Spot)
	if err != nil {
		d.Log.Info("The job's worker, "+worker+": its cost is unknown ("+err.Error()+")", "instance_id", l.InstanceID)
	} else {
		dollars := hourly * served.Hours()
		rec.Dollars = &dollars
		d.Log.Info(fmt.Sprintf("The job's worker, %s: about %s (%s an hour, %s)", worker, prices.Dollars(dollars), prices.Dollars(hourly), source), "instance_id", l.InstanceID)
	}
	if err := prices.Append(prices.RecordPath(d.Settings.StateDir), rec); err != nil {
		d.Log.Warn("Could not add the job to the cost record", "error", err)
	}
}
