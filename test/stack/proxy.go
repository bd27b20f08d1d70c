package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proxy sits between a driver and moto: it counts AWS actions, can answer any of them
// with an injected fault instead of forwarding, and can hold a response back.
type Proxy struct {
	URL      string
	srv      *httptest.Server
	mu       sync.Mutex
	counts   map[string]int
	log      []timedAction
	fault    func(action string, form url.Values, w http.ResponseWriter) bool
	answered func(action string)
	freshECR bool
	rewrite  func(action string, body []byte) []byte
	tokens   idempotency
	drop     map[string]int
}

// SetFault sets (or clears, with nil) a fault that may write the response to a
// request instead of moto, and reports whether it did. form is the EC2 query
// (Action, InstanceType, SubnetId, ...).
func (p *Proxy) SetFault(fault func(action string, form url.Values, w http.ResponseWriter) bool) {
	p.mu.Lock()
	p.fault = fault
	p.mu.Unlock()
}

// OnResponse sets (or clears) a rewrite of moto's answers, for faults moto cannot
// produce itself (an instance that never leaves pending).
func (p *Proxy) OnResponse(rewrite func(action string, body []byte) []byte) {
	p.mu.Lock()
	p.rewrite = rewrite
	p.mu.Unlock()
}

// FreshECRTokens makes moto's ECR tokens (born expired in 2015) expire 12 hours from
// now, as real ECR's do, so a token cache behaves as it would against AWS.
func (p *Proxy) FreshECRTokens() {
	p.mu.Lock()
	p.freshECR = true
	p.mu.Unlock()
}

// twelveHourTokens sets every token's expiresAt in a GetAuthorizationToken answer to
// 12 hours from now.
func twelveHourTokens(body []byte) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	list, _ := doc["authorizationData"].([]any)
	for _, d := range list {
		if m, ok := d.(map[string]any); ok {
			m["expiresAt"] = float64(time.Now().Add(12 * time.Hour).Unix())
		}
	}
	out, _ := json.Marshal(doc)
	return out
}

// OnAnswered sets (or clears, with nil) a hook that runs after moto answered and
// before the driver gets the answer: a test can kill the driver between an action
// and its response.
func (p *Proxy) OnAnswered(hook func(action string)) {
	p.mu.Lock()
	p.answered = hook
	p.mu.Unlock()
}

// IgnoreClientTokens makes the proxy pass repeated RunInstances client tokens to
// moto, which launches again: a test can check the driver copes when idempotency
// fails. By default the proxy honours tokens as EC2 does.
func (p *Proxy) IgnoreClientTokens(ignore bool) {
	p.tokens.mu.Lock()
	p.tokens.ignore = ignore
	p.tokens.mu.Unlock()
}

// DropAnswers lets moto complete the next n requests for action, then closes the
// driver's connection without an answer, as a network fault after EC2 acted does:
// the SDK sees a transport error and retries.
func (p *Proxy) DropAnswers(action string, n int) {
	p.mu.Lock()
	p.drop[action] = n
	p.mu.Unlock()
}

func (p *Proxy) takeDrop(action string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop[action] <= 0 {
		return false
	}
	p.drop[action]--
	return true
}

type (
	actionKey struct{}
	tokenKey  struct{}
)

// NewProxy starts a proxy to moto on a loopback port.
func NewProxy() *Proxy {
	target, _ := url.Parse(MotoURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &Proxy{counts: map[string]int{}, drop: map[string]int{}}
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		hook, fresh, rewrite := p.answered, p.freshECR, p.rewrite
		p.mu.Unlock()
		action := resp.Request.Context().Value(actionKey{}).(string)
		if rewrite != nil {
			if err := rewriteBody(resp, func(b []byte) []byte { return rewrite(action, b) }); err != nil {
				return err
			}
		}
		if fresh && action == "GetAuthorizationToken" && resp.StatusCode == http.StatusOK {
			if err := rewriteBody(resp, twelveHourTokens); err != nil {
				return err
			}
		}
		if e, _ := resp.Request.Context().Value(tokenKey{}).(*tokenEntry); e != nil && resp.StatusCode == http.StatusOK {
			if err := rewriteBody(resp, func(b []byte) []byte { e.body = b; return b }); err != nil {
				return err
			}
		}
		if hook != nil {
			hook(action)
		}
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body)) // EC2 is form-encoded Action=...
		action := form.Get("Action")
		if target := r.Header.Get("X-Amz-Target"); action == "" && target != "" { // JSON protocols (SSM, ECR)
			action = target[strings.LastIndex(target, ".")+1:]
		}
		p.mu.Lock()
		p.counts[action]++
		p.log = append(p.log, timedAction{action, time.Now()})
		fault := p.fault
		p.mu.Unlock()
		if fault != nil && fault(action, form, w) {
			return
		}
		if action == "GetProducts" {
			servePriceList(w, body)
			return
		}
		if action == "RunInstances" {
			launchAsManyAsAsked(r, form)
		}
		ctx := context.WithValue(r.Context(), actionKey{}, action)
		if e := p.tokens.claim(action, form); e != nil {
			defer e.mu.Unlock()
			if e.answer(w, form) {
				return
			}
			ctx = context.WithValue(ctx, tokenKey{}, e)
		}
		if p.takeDrop(action) {
			rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx))
			dropConnection(w)
			return
		}
		rp.ServeHTTP(w, r.WithContext(ctx))
	}))
	p.URL = p.srv.URL
	return p
}

// EC2Error answers like EC2 does with an error code (capacity errors come as HTTP 500).
func EC2Error(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>`, code, message)
}

// launchAsManyAsAsked makes moto launch MaxCount instances, as EC2 does when it has
// the capacity: moto launches MinCount. The client token still sees the request as
// sent (it is read before).
func launchAsManyAsAsked(r *http.Request, form url.Values) {
	most, err := strconv.Atoi(form.Get("MaxCount"))
	if err != nil || form.Get("MinCount") == form.Get("MaxCount") || most < 1 {
		return
	}
	edited := maps.Clone(form)
	edited.Set("MinCount", strconv.Itoa(most))
	body := edited.Encode()
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// dropConnection closes the client's connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // net/http closes the connection without answering
}

// Counts returns how many requests each action received.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

type timedAction struct {
	action string
	at     time.Time
}

// CountsBetween returns how many requests each action received from from to to.
func (p *Proxy) CountsBetween(from, to time.Time) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, a := range p.log {
		if !a.at.Before(from) && !a.at.After(to) {
			out[a.action]++
		}
	}
	return out
}

// LastCall is when action was last requested (zero if never).
func (p *Proxy) LastCall(action string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.log) - 1; i >= 0; i-- {
		if p.log[i].action == action {
			return p.log[i].at
		}
	}
	return time.Time{}
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

func rewriteBody(resp *http.Response, f func([]byte) []byte) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	body = f(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}
