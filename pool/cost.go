package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/prices"
	"github.com/ec2-executor/ec2-executor/workers"
)

// costs puts what workers cost on /metrics: the jobs' costs, read from the cost
// record their cleanups append to, and the pool's own, its workers' idle time.
type costs struct {
	book   *prices.Book
	record string
	offset int64     // how far the record was read
	last   time.Time // when the idle cost was last counted
}

func newCosts(p *Pool) *costs {
	c := &costs{book: &prices.Book{API: p.spot, Dir: filepath.Join(p.s.StateDir, "prices"), Now: p.now},
		record: prices.RecordPath(p.s.StateDir), last: p.now()}
	if fi, err := os.Stat(c.record); err == nil {
		c.offset = fi.Size() // counters start with the process, as Prometheus expects
	}
	return c
}

// countCosts adds the jobs recorded since the last tick, and the idle workers' time
// since then at their hourly price (a price it does not know is not counted).
func (p *Pool) countCosts(ctx context.Context) {
	c := p.costs
	for _, j := range c.newJobs() {
		if j.Dollars != nil {
			p.m.jobCost.WithLabelValues(j.Project, j.Type).Add(*j.Dollars)
		}
	}
	now := p.now()
	hours := now.Sub(c.last).Hours()
	c.last = now
	p.mu.Lock()
	var idle []workers.Lease
	for _, w := range p.book.Workers {
		if w.State == workers.PoolIdle && w.Lease.Type != "" {
			idle = append(idle, w.Lease)
		}
	}
	p.mu.Unlock()
	for _, l := range idle {
		if hourly, _, err := c.book.Hourly(ctx, p.s.AWS.Region, l.Zone, l.Type, l.Spot); err == nil {
			p.m.idleCost.WithLabelValues(l.Type).Add(hourly * hours)
		}
	}
}

// newJobs reads the record's complete lines past the offset.
func (c *costs) newJobs() []prices.Job {
	f, err := os.Open(c.record)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return nil
	}
	var out []prices.Job
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil { // EOF, or a line still being written: read it next time
			return out
		}
		c.offset += int64(len(line))
		var j prices.Job
		if json.Unmarshal(line, &j) == nil {
			out = append(out, j)
		}
	}
}
