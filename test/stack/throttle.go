package stack

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EC2Limits throttles requests as EC2 documents it does, per account and Region
// ("Request throttling for the Amazon EC2 API", Amazon EC2 API Reference): every
// action draws one token from its request bucket, and RunInstances, StartInstances,
// StopInstances and TerminateInstances also draw one token per instance from a
// resource bucket. A request without a token gets RequestLimitExceeded (HTTP 503),
// as from EC2. Install it with Proxy.SetFault(limits.Fault).
type EC2Limits struct {
	mu        sync.Mutex
	now       func() time.Time
	buckets   map[string]*bucket
	throttled map[string]int
}

// requestBuckets are the documented request buckets: size, refill per second.
var requestBuckets = map[string][2]float64{
	"RunInstances":   {5, 2},
	"StartInstances": {5, 2},
	// Categories for every other action.
	"mutating":                {50, 5},
	"non-mutating":            {100, 20},
	"unfiltered non-mutating": {50, 10},
}

// resourceBuckets are the documented per-instance buckets.
var resourceBuckets = map[string][2]float64{
	"RunInstances":       {1000, 2},
	"StartInstances":     {1000, 2},
	"StopInstances":      {1000, 20},
	"TerminateInstances": {1000, 20},
}

// NewEC2Limits starts every bucket full.
func NewEC2Limits() *EC2Limits {
	return &EC2Limits{now: time.Now, buckets: map[string]*bucket{}, throttled: map[string]int{}}
}

type bucket struct {
	tokens, size, refill float64
	at                   time.Time
}

// take refills the bucket for the time since its last use and takes n tokens if it holds them.
func (b *bucket) take(now time.Time, n float64) bool {
	b.tokens = min(b.size, b.tokens+now.Sub(b.at).Seconds()*b.refill)
	b.at = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

func (l *EC2Limits) bucketFor(name string, spec [2]float64, now time.Time) *bucket {
	b := l.buckets[name]
	if b == nil {
		b = &bucket{tokens: spec[0], size: spec[0], refill: spec[1], at: now}
		l.buckets[name] = b
	}
	return b
}

// Fault answers RequestLimitExceeded when the request's buckets are empty; it is a
// Proxy fault. Only EC2 actions are limited (SSM and ECR have their own limits).
func (l *EC2Limits) Fault(action string, form url.Values, w http.ResponseWriter) bool {
	if form.Get("Action") == "" { // a JSON protocol: not EC2
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	category := categoryOf(action, form)
	req := l.bucketFor("request:"+category, requestBuckets[category], now)
	ok := req.take(now, 1)
	if spec, has := resourceBuckets[action]; ok && has {
		if !l.bucketFor("resource:"+action, spec, now).take(now, instancesIn(action, form)) {
			req.tokens++ // EC2 refuses the request whole
			ok = false
		}
	}
	if ok {
		return false
	}
	l.throttled[action]++
	EC2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	return true
}

// categoryOf is the request bucket an action draws from.
func categoryOf(action string, form url.Values) string {
	if _, own := requestBuckets[action]; own {
		return action
	}
	for _, prefix := range []string{"Describe", "Get", "List", "Search"} {
		if strings.HasPrefix(action, prefix) {
			if filtered(form) {
				return "non-mutating"
			}
			return "unfiltered non-mutating"
		}
	}
	return "mutating"
}

// filtered says whether a Describe call names filters, ids or a page size: EC2
// charges an unfiltered, unpaginated call to a smaller bucket.
func filtered(form url.Values) bool {
	for k := range form {
		if strings.HasPrefix(k, "Filter.") || strings.HasPrefix(k, "InstanceId.") || k == "MaxResults" {
			return true
		}
	}
	return false
}

func instancesIn(action string, form url.Values) float64 {
	if action == "RunInstances" {
		n, _ := strconv.Atoi(form.Get("MaxCount"))
		return float64(max(n, 1))
	}
	n := 0
	for k := range form {
		if strings.HasPrefix(k, "InstanceId.") {
			n++
		}
	}
	return float64(max(n, 1))
}

// Throttled is how many requests of each action were refused.
func (l *EC2Limits) Throttled() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.throttled)
}

// Allow takes the tokens a request of action with form would at now, for a model
// that runs on its own clock (the benchmark's docker+machine pattern): it reports
// whether EC2 would have answered it.
func (l *EC2Limits) Allow(action string, form url.Values, now time.Time) bool {
	l.now = func() time.Time { return now }
	return !l.Fault(action, form, discard{})
}

// discard is a ResponseWriter for throttle answers nobody reads.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
