package workers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
)

// Release ends the worker of the job with key, once a pool did not take it back for
// another job (GiveBack): it is terminated. That is every instance of this manager tagged with the key (one
// filtered DescribeInstances), not only the lease's, so a duplicate launch (an SDK
// retry EC2 did not recognise as one) or a prepare killed before it saved the id
// leaves nothing running. It says in the log when it finds more than one.
func (f *Fleet) Release(ctx context.Context, key string, l Lease) error {
	prov := f.prov
	found, err := prov.Find(ctx, f.jobTags(key))
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	if l.InstanceID != "" {
		ids[l.InstanceID] = true
	}
	for _, i := range found {
		ids[i.ID] = true
	}
	list := slices.Sorted(maps.Keys(ids))
	if len(list) > 1 {
		f.log.Warn("Found more than one instance tagged with this job; terminating all of them",
			"instance_ids", strings.Join(list, ","), "lease_instance_id", l.InstanceID)
	}
	var errs []error
	for _, id := range list {
		if err := prov.Terminate(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		f.log.Info("Terminated instance "+id, "instance_id", id)
	}
	return errors.Join(errs...)
}
