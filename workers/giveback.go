package workers

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"time"
)

// GiveBack offers a pooled job's worker back to the pool (pool.max_builds above 1)
// and reports whether the pool kept it. Any doubt (no pool, no answer, a refusal)
// is false: the caller then terminates the worker as for one job.
func (f *Fleet) GiveBack(ctx context.Context, job Job, l Lease) bool {
	if l.Source != SourcePool || f.Settings.Pool.MaxBuilds <= 1 {
		return false
	}
	a, err := release(ctx, f.Settings.PoolSocket(), ReleaseRequest{Job: job, InstanceID: l.InstanceID},
		f.Settings.SSH.CleanupConnectTimeout.Duration+time.Minute)
	switch {
	case err != nil:
		f.Log.Info("Terminating the worker: the pool did not take it back", "reason", err.Error())
		return false
	case !a.Kept:
		f.Log.Info("Terminating the worker: " + a.Why + a.Error)
		return false
	}
	f.Log.Info("Returned worker "+l.InstanceID+" to the pool, wiped ("+strconv.Itoa(a.Builds)+" of "+
		strconv.Itoa(f.Settings.Pool.MaxBuilds)+" builds)", "instance_id", l.InstanceID)
	return true
}

func release(ctx context.Context, socket string, req ReleaseRequest, within time.Duration) (ReleaseAnswer, error) {
	var a ReleaseAnswer
	d := net.Dialer{Timeout: poolAnswerWithin}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return a, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(within))
	if err := json.NewEncoder(conn).Encode(map[string]any{"release": req}); err != nil {
		return a, err
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(line, &a)
}
