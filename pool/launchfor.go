package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/workers"
)

// launchGather is how long the launcher waits, after a claim that needs a launch,
// for the claims of the same burst to join its RunInstances call. While a call
// waits for its turn in the pool's token bucket, more gather behind it.
const launchGather = 200 * time.Millisecond

// launchReq is a claim that found no worker and asks the pool to launch one.
type launchReq struct {
	job  workers.Job
	spec workers.Spec
	done chan launchResult // buffered: the launcher never waits for the claim
}

// launchResult answers a launchReq: the record reserved for its job and how many other
// jobs' workers the same call launched, or why there is none.
type launchResult struct {
	key, id string
	others  int
	err     error
}

// launcher serves launch requests: those that arrive together, grouped by what
// they need, each group in as few RunInstances calls as its user data allows. Its
// calls go through the pool's paced client, as the fill's do.
func (p *Pool) launcher(ctx context.Context) {
	for {
		reqs, ok := gather(ctx, p.launches, launchGather)
		if !ok {
			return
		}
		for _, group := range bySpec(reqs) {
			p.launchGroup(ctx, group)
		}
	}
}

// bySpec groups requests that one RunInstances call can serve, in arrival order.
func bySpec(reqs []launchReq) [][]launchReq {
	var order []string
	groups := map[string][]launchReq{}
	for _, r := range reqs {
		k := fmt.Sprint(r.spec)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([][]launchReq, 0, len(order))
	for _, k := range order {
		out = append(out, groups[k])
	}
	return out
}

// launchGroup launches one worker per request, reserved for its job, in batches
// of at most batchMax (halved while the user data does not fit), and answers each.
func (p *Pool) launchGroup(ctx context.Context, reqs []launchReq) {
	in, err := reqs[0].spec.Instance(p.s.Instance)
	if err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, r := range reqs {
			p.pending--
			r.done <- launchResult{err: err}
		}
		return
	}
	for len(reqs) > 0 {
		size := min(len(reqs), int(p.batchMax.Load()))
		jobs := make([]workers.Job, size)
		for i, r := range reqs[:size] {
			jobs[i] = r.job
		}
		batch, got, err := p.launchBatch(ctx, in, size, jobs)
		if errors.Is(err, cloudinit.ErrBatchTooBig) && size > 1 {
			p.batchMax.Store(int64(size / 2))
			continue
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("Launching workers for claims", "count", size, "error", err)
		}
		p.mu.Lock()
		for i, r := range reqs[:size] {
			p.pending--
			l := launchResult{key: slot(batch, i), others: got - 1, err: err}
			if w := p.book.Workers[l.key]; w != nil && w.Lease.InstanceID != "" {
				l.id, l.err = w.Lease.InstanceID, nil
			} else if err == nil {
				l.err = fmt.Errorf("EC2 launched %d of the %d instances asked for", got, size)
			}
			r.done <- l
		}
		p.mu.Unlock()
		reqs = reqs[size:]
	}
}

// launchFor serves a claim that found no worker: it asks the launcher for one,
// reserved for the job, and waits until the pool's check finds it ready (then it is
// the job's) within instance.launch_timeout and ssh.connect_timeout. Whatever
// fails, the job is told why and launches its own; a job that stops waiting leaves
// its worker to the pool (still booting: it becomes idle) or ends it (ready: it
// was tagged for the job).
func (p *Pool) launchFor(ctx context.Context, req workers.ClaimRequest, gone <-chan struct{}, waiting func(string)) (decision, string) {
	r := launchReq{job: req.Job, spec: req.Spec, done: make(chan launchResult, 1)}
	waiting("no idle or stopped worker fits; the pool launches one for this job")
	var l launchResult
	select {
	case p.launches <- r:
		select {
		case l = <-r.done:
		case <-ctx.Done():
			return decision{ClaimAnswer: workers.ClaimAnswer{Error: "the pool is stopping"}}, ClaimError
		}
	case <-ctx.Done():
		return decision{ClaimAnswer: workers.ClaimAnswer{Error: "the pool is stopping"}}, ClaimError
	}
	if l.err != nil {
		return cold("the pool could not launch a worker for this job: " + l.err.Error())
	}
	how := fmt.Sprintf("in one RunInstances call with %d other jobs' workers", l.others)
	waiting(fmt.Sprintf("launched instance %s for this job %s; waiting for its boot", l.id, how))
	deadline := time.NewTimer(p.s.Instance.LaunchTimeout.Duration + p.s.SSH.ConnectTimeout.Duration)
	defer deadline.Stop()
	for {
		lease, changed, why := p.reserved(l.key, req.Job.Key)
		switch {
		case lease != nil:
			lease.Source = workers.SourcePool
			return decision{ClaimAnswer: workers.ClaimAnswer{Lease: lease, Launched: how}}, ClaimLaunched
		case why != "":
			return cold("the worker the pool launched for this job (" + l.id + ") did not get ready: " + why)
		}
		select {
		case <-changed:
		case <-gone:
			p.unreserve(ctx, l.key, req.Job.Key)
			return decision{ClaimAnswer: workers.ClaimAnswer{Error: "the job stopped waiting"}}, ClaimError
		case <-deadline.C:
			p.unreserve(ctx, l.key, req.Job.Key)
			return cold(fmt.Sprintf("the worker the pool launched for this job (%s) was not ready within instance.launch_timeout and ssh.connect_timeout", l.id))
		case <-ctx.Done():
			return decision{ClaimAnswer: workers.ClaimAnswer{Error: "the pool is stopping"}}, ClaimError
		}
	}
}

// cold is the answer that sends a job to launch its own worker, saying why.
func cold(why string) (decision, string) {
	return decision{ClaimAnswer: workers.ClaimAnswer{Miss: why}}, ClaimCold
}

// reserved looks at the worker launched for job under key: its lease once the check
// handed it to the job, or why it is gone, or else a channel that closes on the
// next change.
func (p *Pool) reserved(key, job string) (*workers.Lease, <-chan struct{}, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.book.Workers[key]
	switch {
	case w == nil:
		why := p.failed[key]
		delete(p.failed, key)
		if why == "" {
			why = "EC2 reports it gone"
		}
		return nil, nil, why
	case w.State == workers.PoolClaimed && w.ClaimedBy == job:
		lease := w.Lease
		return &lease, nil, ""
	}
	return nil, p.changed, ""
}

// unreserve gives the worker launched for a job that stopped waiting to the pool:
// one still booting becomes idle once checked; one already handed to the job is
// terminated, as a claimed worker never goes back unwiped.
func (p *Pool) unreserve(ctx context.Context, key, job string) {
	p.mu.Lock()
	w := p.book.Workers[key]
	delete(p.failed, key)
	switch {
	case w == nil:
	case w.ReservedFor != nil && w.ReservedFor.Key == job:
		w.ReservedFor = nil
		p.saveLocked()
		w = nil
	case w.State == workers.PoolClaimed && w.ClaimedBy == job:
		delete(p.book.Workers, key)
		p.saveLocked()
	default:
		w = nil
	}
	p.mu.Unlock()
	if w != nil {
		p.terminate(context.WithoutCancel(ctx), w.Lease.InstanceID, ReasonJobDone, "the job it was launched for stopped waiting")
	}
}

// reservedLocked counts the booting workers launched for claims. Called with the
// lock held.
func (p *Pool) reservedLocked() int {
	n := 0
	for _, w := range p.book.Workers {
		if w.ReservedFor != nil {
			n++
		}
	}
	return n
}
