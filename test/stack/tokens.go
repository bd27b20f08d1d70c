package stack

import (
	"net/http"
	"net/url"
	"sync"
)

// idempotency models EC2's client tokens for RunInstances, which moto ignores: a
// repeated request with a token EC2 has seen returns the first request's
// reservation instead of launching again, and one with other parameters fails with
// IdempotentParameterMismatch (EC2 API reference, "Ensuring idempotency"). Without
// it, an SDK retry of a RunInstances whose first answer was lost launches a second
// instance on the stack where EC2 would not, and the suite would test moto's
// behaviour instead of EC2's.
type idempotency struct {
	mu      sync.Mutex
	ignore  bool
	entries map[string]*tokenEntry
}

// tokenEntry is one client token: its lock serializes requests that carry it, as EC2
// answers a repeat only once the first is done.
type tokenEntry struct {
	mu   sync.Mutex
	form url.Values
	body []byte // the first successful answer; nil until there is one
}

// claim returns the entry for a RunInstances request's token, locked, or nil when the
// request has no token or tokens are ignored. The caller unlocks it.
func (i *idempotency) claim(action string, form url.Values) *tokenEntry {
	token := form.Get("ClientToken")
	if action != "RunInstances" || token == "" {
		return nil
	}
	i.mu.Lock()
	if i.ignore {
		i.mu.Unlock()
		return nil
	}
	if i.entries == nil {
		i.entries = map[string]*tokenEntry{}
	}
	e := i.entries[token]
	if e == nil {
		e = &tokenEntry{}
		i.entries[token] = e
	}
	i.mu.Unlock()
	e.mu.Lock()
	return e
}

// answer writes the first answer again for a repeated token and reports whether it
// did; a first request (no answer yet) goes on to moto.
func (e *tokenEntry) answer(w http.ResponseWriter, form url.Values) bool {
	if e.body == nil {
		e.form = form
		return false
	}
	if !sameLaunch(e.form, form) {
		EC2Error(w, http.StatusBadRequest, "IdempotentParameterMismatch",
			"The client token you have provided is associated with a resource that has different parameters.")
		return true
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write(e.body)
	return true
}

// sameLaunch compares two RunInstances requests, ignoring what the SDK changes
// between attempts of one call.
func sameLaunch(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if len(va) != len(vb) {
			return false
		}
		for i := range va {
			if va[i] != vb[i] {
				return false
			}
		}
	}
	return true
}
