package workers

import (
	"context"
	"time"

	"github.com/ec2-executor/ec2-executor/provision"
)

// Own lists this manager's workers that are not terminated, with one filtered
// DescribeInstances call per page: what the pool learns all its workers' states from.
func (f *Fleet) Own(ctx context.Context) ([]provision.Instance, error) {
	return f.prov.Find(ctx, f.ownership(false))
}

// Terminate terminates one worker.
func (f *Fleet) Terminate(ctx context.Context, id string) error {
	return f.prov.Terminate(ctx, id)
}

// TerminateAll terminates workers with one TerminateInstances call and returns
// what kept each from ending, by id (nil when it ended).
func (f *Fleet) TerminateAll(ctx context.Context, ids []string) map[string]error {
	return f.prov.TerminateAll(ctx, ids)
}

// Tag sets tags on workers with one CreateTags call.
func (f *Fleet) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	return f.prov.Tag(ctx, ids, tags)
}

// ClaimTags are the tags a pool worker gets when job claims it: it now belongs to
// the job (cleanup and the reaper find it by the job's key) and may live as long as
// any job from now. Its created-at moves to the claim, so the reaper's grace period
// covers the moment before the job has saved its lease.
func (f *Fleet) ClaimTags(job Job) map[string]string {
	tags := f.tags(job, f.now())
	for _, k := range []string{TagManagedBy, TagManager} { // set at launch, unchanged
		delete(tags, k)
	}
	for k := range f.s.Instance.Tags {
		delete(tags, k)
	}
	tags[TagPoolState] = PoolClaimed
	return tags
}

// ExpiryTags move a worker's expiry to max_lifetime from now (an idle pool worker's,
// renewed while the pool holds it, so a pool that is gone leaves nothing that the
// reaper will not end).
func (f *Fleet) ExpiryTags() map[string]string {
	now := f.now()
	return map[string]string{TagExpiresAt: now.Add(f.s.Instance.MaxLifetime.Duration).UTC().Format(timeFormat)}
}

// Expiry is when a worker must be gone: its expires-at tag, else its creation plus
// instance.max_lifetime.
func (f *Fleet) Expiry(inst provision.Instance) time.Time { return f.expiry(inst) }

// Stop stops workers with one StopInstances call.
func (f *Fleet) Stop(ctx context.Context, ids []string) error { return f.prov.Stop(ctx, ids) }

// Resume starts stopped workers with one StartInstances call.
func (f *Fleet) Resume(ctx context.Context, ids []string) error {
	return f.prov.Resume(ctx, ids)
}
