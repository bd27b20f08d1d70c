package pool

import (
	"context"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// check reaches a booting (or adopted) worker over SSH with its pinned keys, waits
// for Docker, pulls pool.prepull_images and then offers it as idle, or hands it to
// the job it was launched for. A worker that does not get there within
// ssh.connect_timeout is terminated.
func (p *Pool) check(ctx context.Context, w Record) {
	defer func() {
		p.mu.Lock()
		delete(p.checking, w.Key)
		p.mu.Unlock()
	}()
	eng, err := p.fleet.Check(ctx, w.Lease)
	if err == nil {
		p.m.phases.WithLabelValues(PhaseSSH).Observe(p.now().Sub(w.Since).Seconds())
		p.prepull(ctx, eng, w.Lease.InstanceID)
		eng.Close()
	}
	if ctx.Err() != nil {
		return // shutting down: the next start checks it again
	}
	if err != nil {
		p.drop(w.Key, err.Error())
		p.terminate(ctx, w.Lease.InstanceID, ReasonBoot, "it did not get ready: "+err.Error())
		return
	}
	p.m.phases.WithLabelValues(PhaseImages).Observe(p.now().Sub(w.Since).Seconds())
	p.mu.Lock()
	rec := p.book.Workers[w.Key]
	if rec == nil || rec.State != workers.PoolBooting {
		p.mu.Unlock()
		return
	}
	if rec.ReservedFor != nil {
		p.handOver(rec, w.Lease.Address)
		p.mu.Unlock()
		return
	}
	state := p.readyState()
	rec.State, rec.Since, rec.Lease.Address = state, p.now(), w.Lease.Address
	p.saveLocked()
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Info("A pool worker is ready", "instance_id", w.Lease.InstanceID, "type", w.Lease.Type, "state", state)
	if state == workers.PoolStopped {
		p.stop(ctx, []string{w.Lease.InstanceID})
	} else if err := p.ec2.Tag(ctx, []string{w.Lease.InstanceID}, map[string]string{workers.TagPoolState: workers.PoolIdle}); err != nil {
		p.log.Warn("Tagging a pool worker idle", "instance_id", w.Lease.InstanceID, "error", err)
	}
	p.publish()
}

// handOver gives a worker that got ready to the job it was launched for, whose
// claim waits for the change. Called with the lock held.
func (p *Pool) handOver(rec *Record, addr string) {
	rec.State, rec.Since, rec.Lease.Address = workers.PoolClaimed, p.now(), addr
	rec.ClaimedBy, rec.ReservedFor = rec.ReservedFor.Key, nil
	p.saveLocked()
	p.broadcastLocked()
	p.log.Info("A worker launched for a job is ready", "instance_id", rec.Lease.InstanceID, "job_key", rec.ClaimedBy)
}

// drop forgets a worker the pool is about to terminate, keeping why for the claim
// it was launched for, if any.
func (p *Pool) drop(key, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.book.Workers[key]; w != nil && w.ReservedFor != nil {
		p.failed[key] = why
		p.broadcastLocked()
	}
	delete(p.book.Workers, key)
	p.saveLocked()
}

// prepullGiveUp is how many pulls in a row of a pool.prepull_images image may fail
// before the pool stops pulling it: then the image (its name, a credential, its
// registry) is what is broken, not the workers.
const prepullGiveUp = 3

// prepull pulls each pool.prepull_images image the worker lacks, the way a job's
// prepare pulls (workers.Images: registry.rewrites first, then the manager's Docker
// config and the ECR source registry.ecr names). A failed pull does not fail the
// worker, whose job pulls the image itself; an image whose pulls keep failing is
// given up, in the log and on ec2x_pool_prepull_failing.
func (p *Pool) prepull(ctx context.Context, eng *engine.Worker, id string) {
	images := p.prepullImages()
	if len(images) == 0 {
		return
	}
	path, config, err := dockerauth.ManagerConfig(p.s.Registry.DockerConfig)
	if err != nil {
		p.log.Warn("Not using the manager's Docker config", "error", err)
	}
	creds := dockerauth.NewResolver(ctx, dockerauth.Sources{ManagerConfig: config, ManagerConfigPath: path,
		Helpers: dockerauth.Helpers{Timeout: p.s.Registry.HelperTimeout.Duration}, Fallback: workers.ECRFallback(p.s, p.ecr, eng, p.now)})
	im := workers.Images{Rewrites: p.s.Registry.Rewrites, Creds: creds, Log: p.log.With("instance_id", id)}
	for _, image := range images {
		_, err := im.Ensure(ctx, eng, image, "", []string{settings.PullIfNotPresent})
		if ctx.Err() == nil {
			p.notePrepull(image, err)
		}
	}
}

// prepullImages are the pool.prepull_images the pool has not given up.
func (p *Pool) prepullImages() []string {
	p.prepullMu.Lock()
	defer p.prepullMu.Unlock()
	var out []string
	for _, image := range p.s.Pool.PrepullImages {
		if p.prepullFailures[image] < prepullGiveUp {
			out = append(out, image)
		}
	}
	return out
}

// notePrepull counts a pre-pull's outcome; the one failure too many gives the
// image up until the pool restarts.
func (p *Pool) notePrepull(image string, err error) {
	p.prepullMu.Lock()
	defer p.prepullMu.Unlock()
	if err == nil {
		p.prepullFailures[image] = 0
		return
	}
	p.prepullFailures[image]++
	if p.prepullFailures[image] < prepullGiveUp {
		p.log.Warn("Pre-pulling an image failed; the worker is offered without it", "image", image, "error", err)
		return
	}
	p.m.prepullFailing.WithLabelValues(image).Set(1)
	p.log.Error("Giving up pre-pulling an image: its last pulls all failed; jobs pull it themselves until the pool restarts",
		"image", image, "failures", prepullGiveUp, "error", err)
}
