package stack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// aptProxy is the package mirror a really booting worker's apt talks to, as a VPC's
// mirror or NAT would be: an HTTP proxy that passes on only the repositories this
// machine's apt uses (and the ones the cached root filesystem was built from),
// keeps every .deb it fetched (a package file never changes under its name), so a
// second boot installs Docker without the internet, and can be broken per worker to
// play a package source that is down.
type aptProxy struct {
	cache    string
	hosts    []string // the only hosts it fetches from
	upstream *http.Client
}

func newAPTProxy(cache string, hosts []string) *aptProxy {
	return &aptProxy{cache: cache, hosts: hosts,
		upstream: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}}
}

// serveOn serves the proxy on l, a listener inside a worker's namespace; broken
// makes it answer 503 to everything, as a package source that is down.
func (a *aptProxy) serveOn(l net.Listener, broken bool) *http.Server {
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, broken)
	})}
	go func() { _ = srv.Serve(l) }()
	return srv
}

func (a *aptProxy) serve(w http.ResponseWriter, r *http.Request, broken bool) {
	switch {
	case broken:
		http.Error(w, "the package source is down (the stack broke it for this worker)", http.StatusServiceUnavailable)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	case r.URL.Scheme != "http" || !slices.Contains(a.hosts, r.URL.Hostname()):
		http.Error(w, "this proxy reaches only this machine's Debian mirrors ("+strings.Join(a.hosts, ", ")+"), not "+r.URL.Host, http.StatusForbidden)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".deb") && !strings.Contains(r.URL.Path, "..") {
		a.serveDeb(w, r)
		return
	}
	a.pass(w, r)
}

// pass forwards a request for an index, whose content changes, uncached.
func (a *aptProxy) pass(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, h := range []string{"If-Modified-Since", "If-None-Match", "Range", "If-Range", "Cache-Control"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := a.upstream.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// serveDeb answers a package file from the cache, fetching it first if need be.
func (a *aptProxy) serveDeb(w http.ResponseWriter, r *http.Request) {
	file := filepath.Join(a.cache, r.URL.Hostname(), filepath.FromSlash(path.Clean(r.URL.Path)))
	if _, err := os.Stat(file); err != nil {
		if err := a.fetch(r, file); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	http.ServeFile(w, r, file)
}

func (a *aptProxy) fetch(r *http.Request, file string) error {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, r.URL.String(), nil)
	if err != nil {
		return err
	}
	resp, err := a.upstream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", r.URL, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err = errors.Join(err, tmp.Close()); err != nil {
		return err
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("%s: got %d of %d bytes", r.URL, n, resp.ContentLength)
	}
	return os.Rename(tmp.Name(), file)
}
