package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// Beat renews this manager's heartbeat: its pool is alive.
func (f *Fleet) Beat(ctx context.Context) error {
	return provision.Beat(ctx, f.ssm, f.s.ManagerID, f.now())
}

// ReapDeadManagers terminates the workers of every other manager whose heartbeat is
// older than reap.manager_timeout and returns them (with dryRun, what it would
// terminate). A manager that never renewed a heartbeat is left alone: only the
// expiry tag ends its workers.
func (f *Fleet) ReapDeadManagers(ctx context.Context, dryRun bool) ([]Reaped, error) {
	beats, err := provision.Heartbeats(ctx, f.ssm)
	if err != nil {
		return nil, err
	}
	timeout := f.s.Reap.ManagerTimeout.Duration
	var done []Reaped
	var errs []error
	for manager, at := range beats {
		age := f.now().Sub(at)
		if manager == f.s.ManagerID || age <= timeout {
			continue
		}
		found, err := f.prov.Find(ctx, map[string]string{TagManagedBy: ManagedByThis, TagManager: manager})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		why := fmt.Sprintf("its manager's heartbeat is %s old (reap.manager_timeout %s)", age.Round(time.Second), timeout)
		for _, inst := range found {
			done, errs = f.end(ctx, inst, manager, why, dryRun, done, errs)
		}
	}
	return done, errors.Join(errs...)
}
