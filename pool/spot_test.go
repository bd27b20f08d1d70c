package pool

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/workers"
)

// A round reads many idle spot workers' metadata side by side, never more than
// spotReaders at once, and ends each one with a notice: a pool of hundreds is not
// read one handshake after another, and a slow worker holds up only its reader.
func TestASpotRoundReadsIdleWorkersSideBySide(t *testing.T) {
	f := provisiontest.New()
	p := testPool(t, f)
	var idleSpot []Record
	noticed := map[string]bool{}
	for i := range 3 * spotReaders {
		key := fmt.Sprintf("pool-%d", i)
		id := f.Launched(t, map[string]string{workers.TagJobKey: key})
		idle(p, key, id, "t3.micro")
		p.book.Workers[key].Lease.Spot = true
		idleSpot = append(idleSpot, *p.book.Workers[key])
		if i%10 == 0 {
			noticed[id] = true
		}
	}
	var mu sync.Mutex
	reading, most, read := 0, 0, 0
	reader := func(ctx context.Context, l workers.Lease) (engine.SpotNotice, error) {
		mu.Lock()
		reading++
		most, read = max(most, reading), read+1
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a handshake
		mu.Lock()
		reading--
		mu.Unlock()
		if noticed[l.InstanceID] {
			return engine.SpotNotice{Action: "terminate", Time: now.Add(2 * time.Minute)}, nil
		}
		return engine.SpotNotice{}, nil
	}
	began := time.Now()
	p.spotRound(t.Context(), idleSpot, reader)
	if read != len(idleSpot) || most > spotReaders || most < 2 {
		t.Fatalf("read %d of %d workers, at most %d at once (want 2 to %d)", read, len(idleSpot), most, spotReaders)
	}
	if took := time.Since(began); took > time.Duration(len(idleSpot))*20*time.Millisecond/2 {
		t.Errorf("the round took %s: the reads were not side by side", took)
	}
	running := f.Running()
	for _, w := range idleSpot {
		_, kept := p.book.Workers[w.Key]
		if up := slices.Contains(running, w.Lease.InstanceID); noticed[w.Lease.InstanceID] == (kept || up) {
			t.Errorf("worker %s (notice %v): kept %v, running %v", w.Lease.InstanceID, noticed[w.Lease.InstanceID], kept, up)
		}
	}
}
