package stack

import (
	"net/url"
	"testing"
	"time"
)

func TestEC2LimitsFollowTheDocumentedBuckets(t *testing.T) {
	l := NewEC2Limits()
	t0 := time.Unix(1000, 0)
	run := url.Values{"Action": {"RunInstances"}, "MaxCount": {"1"}}
	for i := range 5 {
		if !l.Allow("RunInstances", run, t0) {
			t.Fatalf("RunInstances %d of the burst of 5 was throttled", i+1)
		}
	}
	if l.Allow("RunInstances", run, t0) {
		t.Fatal("a 6th RunInstances in the same instant was allowed")
	}
	if !l.Allow("RunInstances", run, t0.Add(500*time.Millisecond)) || l.Allow("RunInstances", run, t0.Add(500*time.Millisecond)) {
		t.Fatal("RunInstances should refill at 2 per second")
	}
	filtered := url.Values{"Action": {"DescribeInstances"}, "Filter.1.Name": {"tag:x"}}
	unfiltered := url.Values{"Action": {"DescribeInstances"}}
	allowed := func(form url.Values, n int) int {
		ok := 0
		for range n {
			if l.Allow("DescribeInstances", form, t0) {
				ok++
			}
		}
		return ok
	}
	if got := allowed(filtered, 150); got != 100 {
		t.Errorf("filtered DescribeInstances: %d of 150 allowed at once, want 100", got)
	}
	if got := allowed(unfiltered, 80); got != 50 {
		t.Errorf("unfiltered DescribeInstances: %d of 80 allowed at once, want 50", got)
	}
	big := url.Values{"Action": {"RunInstances"}, "MaxCount": {"1001"}}
	if l.Allow("RunInstances", big, t0.Add(time.Hour)) {
		t.Error("a launch of 1001 instances passed the resource bucket of 1000")
	}
	if got := l.Throttled(); got["RunInstances"] != 3 || got["DescribeInstances"] != 80 {
		t.Errorf("throttled counts %v", got)
	}
}
