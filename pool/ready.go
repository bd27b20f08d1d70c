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
func (p *Pool) check(ctx context.Context, w Worker) {
	defer func() {
		p.mu.Lock()
		delete(p.checking, w.Key)
		p.mu.Unlock()
	}()
	eng, err := p.fleet.Check(ctx, w.Lease)
	if err == nil {
		p.m.phases.WithLabelValues(PhaseSSH).Observe(p.now().Sub(w.Since).Seconds())
		err = p.prepull(ctx, eng)
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
	p.log.Info("A pool worker is ready", "instance_id", w.Lease.InstanceID, "type", w.Type, "state", state)
	if state == workers.PoolStopped {
		p.stop(ctx, []string{w.Lease.InstanceID})
	} else if err := p.fleet.Tag(ctx, []string{w.Lease.InstanceID}, map[string]string{workers.TagPoolState: workers.PoolIdle}); err != nil {
		p.log.Warn("Tagging a pool worker idle", "instance_id", w.Lease.InstanceID, "error", err)
	}
	p.publish()
}

// handOver gives a worker that got ready to the job it was launched for, whose
// claim waits for the change. Called with the lock held.
func (p *Pool) handOver(rec *Worker, addr string) {
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

// prepull pulls every pool.prepull_images image the worker lacks, with the manager's
// Docker credentials or, for ECR, the worker's own helper.
func (p *Pool) prepull(ctx context.Context, eng *engine.Worker) error {
	if len(p.s.Pool.PrepullImages) == 0 {
		return nil
	}
	path, config, err := dockerauth.ManagerConfig(p.s.Registry.DockerConfig)
	if err != nil {
		p.log.Warn("Not using the manager's Docker config", "error", err)
	}
	var fallback dockerauth.RegistryFallback
	if p.s.Registry.ECR == settings.ECRWorker {
		fallback = dockerauth.WorkerHelper{Run: eng.Exec}
	}
	creds := dockerauth.NewResolver(ctx, dockerauth.Sources{ManagerConfig: config, ManagerConfigPath: path,
		Helpers: dockerauth.Helpers{Timeout: p.s.Registry.HelperTimeout.Duration}, Fallback: fallback})
	for _, image := range p.s.Pool.PrepullImages {
		if ok, err := eng.Present(ctx, image); err == nil && ok {
			continue
		}
		auth := ""
		if c, ok, err := creds.For(ctx, image); err != nil {
			return err
		} else if ok {
			if auth, err = c.Encode(); err != nil {
				return err
			}
		}
		if err := eng.Pull(ctx, image, auth, ""); err != nil {
			return err
		}
	}
	return nil
}
