package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/provision"
	"github.com/ec2-executor/ec2-executor/settings"
)

// What the pool asks of the fleet: its workers' tags and expiry, its batch
// launches (StartPoolBatch), and a spot worker's notice (SpotNotice). The pool makes
// its other EC2 calls on its workers (poll, tag, stop, start, terminate) through
// provision itself, on its paced client.

// OwnTags select this manager's workers (provision.Provisioner.Find): the pool
// learns all its workers' states from one filtered DescribeInstances.
func (f *Fleet) OwnTags() map[string]string { return f.ownership(false) }

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

// StartPoolBatch launches up to n workers of the instance settings in for the pool
// with one RunInstances call.
// EC2 gives a call's instances one user data, so it is a batch document
// (cloudinit.RenderBatch) in which each launch index has keys of its own. They are
// tagged with the batch's key. saved is called with the leases, by launch index,
// first with their keys only and then with the ids of the instances EC2 launched
// (it may launch fewer than n), before anything else can fail. A batch whose user
// data would not fit is cloudinit.ErrBatchTooBig: launch fewer.
func (f *Fleet) StartPoolBatch(ctx context.Context, in settings.Instance, batch string, n int, saved func([]Lease) error) ([]Lease, error) {
	leases := make([]Lease, n)
	ws := make([]cloudinit.Login, n)
	for i := range n {
		keys, err := engine.NewKeys(keyComment(batch))
		if err != nil {
			return nil, err
		}
		leases[i] = Lease{SSHUser: f.s.SSH.User, ClientKey: keys.Client.Private, HostKey: keys.Host.Public, Source: SourcePool}
		ws[i] = cloudWorker(f.s.SSH.User, keys)
	}
	userData, err := cloudinit.RenderBatch(ws, CloudOptions(f.s))
	if err != nil {
		return nil, err
	}
	if err := saved(leases); err != nil {
		return nil, err
	}
	spec, err := f.launchSpec(ctx, in, Job{Key: batch}, userData)
	if err != nil {
		return nil, err
	}
	spec.Tags["Name"] = "ec2-executor pool worker"
	spec.Tags[TagPoolState] = PoolBooting
	_, err = f.prov.StartBatch(ctx, spec, n, func(insts []provision.Instance) error {
		for _, in := range insts {
			if in.LaunchIndex < 0 || in.LaunchIndex >= n {
				return fmt.Errorf("instance %s has launch index %d in a batch of %d", in.ID, in.LaunchIndex, n)
			}
			leases[in.LaunchIndex].InstanceID = in.ID
		}
		return saved(leases)
	})
	return leases, err
}

// SpotNotice reads what EC2 announced for a spot worker that no job holds, over a
// connection of its own (engine.Metadata).
func (f *Fleet) SpotNotice(ctx context.Context, l Lease) (engine.SpotNotice, error) {
	w, err := f.Reconnect(ctx, l, f.s.SSH.CleanupConnectTimeout.Duration, false)
	if err != nil {
		return engine.SpotNotice{}, err
	}
	defer w.Close()
	md, err := w.Metadata()
	if err != nil {
		return engine.SpotNotice{}, err
	}
	return md.SpotNotice(ctx)
}
