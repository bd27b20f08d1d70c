package stack

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
)

// Proxy sits between a driver and moto: it counts EC2 actions and can answer any of
// them with an injected fault instead of forwarding.
type Proxy struct {
	URL    string
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
	// Fault, when set, may write a response for an action instead of moto.
	Fault func(action string, w http.ResponseWriter) bool
}

// NewProxy starts a proxy to moto on a loopback port.
func NewProxy() *Proxy {
	target, _ := url.Parse(MotoURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &Proxy{counts: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		q, _ := url.ParseQuery(string(body)) // EC2 is form-encoded Action=...
		action := q.Get("Action")
		p.mu.Lock()
		p.counts[action]++
		fault := p.Fault
		p.mu.Unlock()
		if fault != nil && fault(action, w) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p
}

// Counts returns how many requests each action received.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }
