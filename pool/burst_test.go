package pool

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec2-executor/ec2-executor/provision/provisiontest"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// A burst of claims on the socket is answered within the window a job waits before
// it launches cold (each claim is saved to disk before its answer), and no worker
// is handed out twice.
func TestAHundredClaimsAtOnceAreAnsweredInTime(t *testing.T) {
	const n = 100
	p := testPool(t, provisiontest.New())
	for i := range n {
		idle(p, fmt.Sprintf("k%d", i), fmt.Sprintf("i-%d", i), "t3.micro")
	}
	socket := serving(t, p)
	ctx := context.Background()
	var wg sync.WaitGroup
	took, ids, errs := make([]time.Duration, n), make([]string, n), make([]error, n)
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			a, err := workers.Claim(ctx, socket, workers.ClaimRequest{Job: workers.Job{Key: fmt.Sprint(i)},
				Spec: workers.Spec{Types: []string{"t3.micro"}, Market: settings.MarketOnDemand}}, time.Second, time.Minute, func(string) {})
			took[i], errs[i] = time.Since(start), err
			if err == nil && a.Lease != nil {
				ids[i] = a.Lease.InstanceID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || ids[i] == "" {
			t.Fatalf("claim %d: %v (no worker)", i, err)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Fatal("a worker was handed out twice")
	}
	slices.Sort(took)
	t.Logf("%d claims at once: median answer %s, slowest %s", n, took[n/2], took[n-1])
}
