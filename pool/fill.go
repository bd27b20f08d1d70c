package pool

import (
	"context"
	"errors"
	"strconv"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// fill launches the workers the pool is missing, within max_instances, in as few
// RunInstances calls as their user data allows: those of instance.types'
// architecture, then the other's ([pool.<arch>]).
func (p *Pool) fill(ctx context.Context) {
	idleWant, stoppedWant, _ := p.size()
	p.fillArch(ctx, p.s.Instance, idleWant+stoppedWant)
	other := p.s.Instance.OtherArch()
	if want := p.s.Pool.ArchIdle(other); want > 0 {
		in, err := p.s.Instance.ForArch(other, nil) // validate made sure it has an image and types
		if err != nil {
			p.log.Warn("Filling the pool's "+other+" workers", "error", err)
			return
		}
		p.fillArch(ctx, in, want)
	}
}

// fillArch launches the workers of in's architecture the pool is missing to have
// want (idle, stopped or booting for no job).
func (p *Pool) fillArch(ctx context.Context, in settings.Instance, want int) {
	p.mu.Lock()
	n, reserved := p.countArch(in.Arch())
	missing := want - n[workers.PoolIdle] - (n[workers.PoolBooting] - reserved) - n[workers.PoolStopped]
	if limit := p.s.Pool.MaxInstances; limit > 0 {
		missing = min(missing, limit-p.total-p.pending)
	}
	p.mu.Unlock()
	for missing > 0 && ctx.Err() == nil {
		size := min(missing, int(p.batchMax.Load()))
		_, got, err := p.launchBatch(ctx, in, size, nil)
		switch {
		case errors.Is(err, cloudinit.ErrBatchTooBig) && size > 1:
			p.batchMax.Store(int64(size / 2))
			continue
		case err != nil:
			if ctx.Err() == nil {
				p.log.Warn("Launching pool workers", "error", err)
			}
			return
		}
		missing -= got
	}
}

// launchBatch starts up to n pool workers of the instance settings in with one
// RunInstances call and returns the batch's key and how many EC2 launched. With
// jobs (one per worker), worker i is reserved for jobs[i]: its check hands it to
// that job's claim instead of offering it. Their records (with their keys) are
// saved before the launch and again with their ids, so no restart loses track of
// them.
func (p *Pool) launchBatch(ctx context.Context, in settings.Instance, n int, jobs []workers.Job) (string, int, error) {
	batch, start := newKey(), p.now()
	saved := func(ls []workers.Lease) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, l := range ls {
			key := slot(batch, i)
			if p.book.Workers[key] == nil {
				w := &Record{Key: key, Batch: batch, Index: i, State: workers.PoolBooting, Since: start, RootGiB: in.RootVolume.SizeGiB, Arch: in.Arch()}
				if jobs != nil {
					w.ReservedFor, w.Project = &jobs[i], jobs[i].ProjectID
				}
				p.book.Workers[key] = w
			}
			p.book.Workers[key].Lease = l
		}
		return p.book.save()
	}
	_, err := p.fleet.StartPoolBatch(ctx, in, batch, n, saved)
	p.mu.Lock()
	defer p.mu.Unlock()
	launched := 0
	for i := range n {
		key := slot(batch, i)
		w := p.book.Workers[key]
		switch {
		case w == nil:
		case w.Lease.InstanceID != "":
			launched++
		case err == nil || ctx.Err() == nil:
			// EC2 launched fewer than asked, or the call failed: these keys have no
			// instance. (A launch cut short by shutdown keeps them: the next start
			// adopts an instance that did start, or forgets them after a while.)
			delete(p.book.Workers, key)
		}
	}
	p.total += launched
	if launched > 0 {
		p.m.phases.WithLabelValues(PhaseRun).Observe(p.now().Sub(start).Seconds())
		p.log.Info("Launched pool workers with one RunInstances call", "count", launched, "batch", batch, "for_jobs", len(jobs))
	}
	p.saveLocked()
	return batch, launched, err
}

// slot names a worker by its batch and launch index.
func slot(batch string, index int) string { return batch + "-" + strconv.Itoa(index) }

// archOf is the architecture a pool worker was launched as.
func (p *Pool) archOf(w *Record) string {
	if w.Arch != "" {
		return w.Arch
	}
	return p.s.Instance.Arch()
}

// countArch counts the workers of arch by state, and the booting ones launched for
// claims. Called with the lock held.
func (p *Pool) countArch(arch string) (map[string]int, int) {
	n, reserved := map[string]int{}, 0
	for _, w := range p.book.Workers {
		if p.archOf(w) != arch {
			continue
		}
		n[w.State]++
		if w.ReservedFor != nil {
			reserved++
		}
	}
	return n, reserved
}
