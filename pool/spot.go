package pool

import (
	"context"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/workers"
)

// A spot worker that EC2 has announced it will reclaim (or at raised risk of it, a
// rebalance recommendation) must not be offered to a job: the job would lose it
// within two minutes and run again from the start. The notice is only readable
// inside the instance, so the pool reads each idle spot worker's metadata over SSH
// every spotWatchInterval (one handshake per idle spot worker), and ends those with
// a notice. A claimed worker is its job's holder's to watch (stages), and its
// cleanup gives it back with the notice, so that it is not kept either.

// spotWatchInterval is how often the pool reads its idle spot workers' metadata.
const spotWatchInterval = 15 * time.Second

// spotReaders is how many idle spot workers' metadata the pool reads at once.
const spotReaders = 16

// noticeReader reads one worker's spot notice (the fleet's SpotNotice; a fake in tests).
type noticeReader func(context.Context, workers.Lease) (engine.SpotNotice, error)

func (p *Pool) watchSpot(ctx context.Context) {
	tick := time.NewTicker(spotWatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.spotRound(ctx, p.idleSpot(), p.fleet.SpotNotice)
	}
}

// spotRound checks the idle spot workers, at most spotReaders at once, and returns
// when all are checked.
func (p *Pool) spotRound(ctx context.Context, idle []Record, read noticeReader) {
	slots := make(chan struct{}, spotReaders)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, w := range idle {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			p.checkSpot(ctx, w, read)
		})
	}
}

// idleSpot lists the idle spot workers.
func (p *Pool) idleSpot() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Record
	for _, w := range p.book.Workers {
		if w.State == workers.PoolIdle && w.Lease.Spot {
			out = append(out, *w)
		}
	}
	return out
}

// checkSpot ends an idle spot worker with a notice, unless a claim took it first.
func (p *Pool) checkSpot(ctx context.Context, w Record, read noticeReader) {
	n, err := read(ctx, w.Lease)
	if err != nil || (!n.Reclaim() && n.Rebalance.IsZero()) {
		return // unreachable: the poll's check of EC2's state decides
	}
	p.mu.Lock()
	rec := p.book.Workers[w.Key]
	if rec == nil || rec.State != workers.PoolIdle {
		p.mu.Unlock()
		return
	}
	delete(p.book.Workers, w.Key)
	p.saveLocked()
	p.mu.Unlock()
	if n.Reclaim() {
		in := workers.Interruption{At: p.now().UTC(), InstanceID: w.Lease.InstanceID, Type: w.Lease.Type, Zone: w.Lease.Zone}
		if err := workers.RecordInterruption(p.s.StateDir, in); err != nil {
			p.log.Warn("Could not record the spot reclaim", "instance_id", w.Lease.InstanceID, "error", err)
		}
	}
	p.terminate(ctx, w.Lease.InstanceID, ReasonSpot, spotWhy(n))
	p.kick()
}

func spotWhy(n engine.SpotNotice) string {
	if n.Reclaim() {
		return "EC2 announced its spot reclaim (" + n.Action + " at " + n.Time.UTC().Format(time.RFC3339) + ")"
	}
	return "EC2 recommended its rebalance: it is at raised risk of a spot reclaim"
}

// publishBreakers shows the open spot breakers on /metrics.
func (p *Pool) publishBreakers() {
	open, err := p.fleet.Breakers(p.s.Instance)
	if err != nil {
		p.log.Warn("Reading the record of spot reclaims", "error", err)
		return
	}
	p.m.spotBreakers.Reset()
	for _, b := range open {
		p.m.spotBreakers.WithLabelValues(b.Type, b.Zone).Set(1)
	}
	p.mu.Lock()
	p.breakers = open
	p.mu.Unlock()
}

// breakerMadeOnDemand reports whether an open spot breaker covers the on-demand
// worker w's type and zone: the pool launched it for spot claims, and a spot
// launch there would be on-demand too. Called with the lock held.
func (p *Pool) breakerMadeOnDemand(w *Record) bool {
	if w.Lease.Spot {
		return false
	}
	for _, b := range p.breakers {
		if b.Type == w.Lease.Type && b.Zone == w.Lease.Zone {
			return true
		}
	}
	return false
}
