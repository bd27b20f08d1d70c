package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/ec2-executor/ec2-executor/workers"
)

// Status is what `pool status` prints.
type Status struct {
	Workers map[string]int `json:"workers"`
	// Idle lists the idle workers' instance ids, those ready longest first.
	Idle         []string      `json:"idle"`
	Total        int           `json:"total"`
	IdleCount    int           `json:"idle_count"`    // wanted now (the schedule's, or pool.idle_count)
	StoppedCount int           `json:"stopped_count"` // likewise
	MaxInstances int           `json:"max_instances"`
	Recent       []ClaimRecord `json:"recent_claims"`
	// LastPoll is when the pool last finished a poll: learned its workers' states
	// from EC2 and acted on them (zero before its first: until then it has not
	// adopted the workers it had).
	LastPoll time.Time `json:"last_poll"`
}

// listen opens the claim socket: mode 0660, group pool.socket_group when set.
func (p *Pool) listen() (net.Listener, error) {
	path := p.s.PoolSocket()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the pool socket's directory: %w", err)
	}
	_ = os.Remove(path) // a socket an earlier pool left; two live pools on one socket is a setup error
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	err = os.Chmod(path, 0o660)
	if gid, ok, gerr := p.socketGID(); gerr != nil {
		err = errors.Join(err, gerr)
	} else if ok {
		err = errors.Join(err, os.Chown(path, -1, gid))
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("securing %s: %w", path, err)
	}
	return l, nil
}

func (p *Pool) socketGID() (int, bool, error) {
	if p.s.Pool.SocketGroup == "" {
		return 0, false, nil
	}
	g, err := user.LookupGroup(p.s.Pool.SocketGroup)
	if err != nil {
		return 0, false, fmt.Errorf("pool.socket_group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	return gid, err == nil, err
}

// serve answers connections until the listener closes, then waits for them.
func (p *Pool) serve(ctx context.Context, l net.Listener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			p.answer(ctx, c.(*net.UnixConn))
		}()
	}
}

// answer reads one request, checks the peer's credentials and the request's
// protocol version, and answers it. The request is read first so that a refused
// peer reads its refusal instead of a broken pipe.
func (p *Pool) answer(ctx context.Context, c *net.UnixConn) {
	enc := json.NewEncoder(c)
	send := func(a workers.Answer) error { a.Version = workers.ProtocolVersion; return enc.Encode(a) }
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	var req workers.Request
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	why := p.refusal(c)
	switch {
	case why != "":
		p.log.Warn("Refused a request", "why", why)
		p.m.claims.WithLabelValues(ClaimRefused).Inc()
	case err != nil:
		why = "unreadable request: " + err.Error()
	default:
		why = workers.VersionRefusal(req.Version)
	}
	if why != "" {
		_ = send(workers.Refusal(why))
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch {
	case req.Status:
		st, err := json.Marshal(p.status())
		if err != nil {
			_ = send(workers.Refusal(err.Error()))
			return
		}
		_ = send(workers.Answer{Status: st})
	case req.Release != nil:
		a := p.takeBack(ctx, *req.Release)
		_ = send(workers.Answer{Release: &a})
	case req.Claim != nil:
		gone := make(chan struct{}) // the job sends nothing more: a read ends when it hangs up
		go func() { _, _ = r.ReadByte(); close(gone) }()
		a := p.claim(ctx, *req.Claim, func(why string) { _ = send(workers.Answer{Waiting: why}) }, gone)
		if err := send(workers.Answer{Claim: &a}); err != nil && a.Lease != nil {
			// The job is gone; the worker stays claimed for it, and its cleanup, or the
			// reaper once the job's state is missing, ends it. It is never offered again.
			p.log.Warn("The claiming job left before its answer; its worker stays claimed", "instance_id", a.Lease.InstanceID, "job_key", req.Claim.Job.Key)
		}
	default:
		_ = send(workers.Refusal("the request asks for nothing (no claim, release or status)"))
	}
}

// refusal says why the peer may not claim, or "" when it may: root, the pool's own
// user, or a member of pool.socket_group, by the kernel's account of the peer
// (SO_PEERCRED), whatever the socket's mode lets through.
func (p *Pool) refusal(c *net.UnixConn) string {
	raw, err := c.SyscallConn()
	if err != nil {
		return "cannot read the peer's credentials: " + err.Error()
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return "cannot read the peer's credentials"
	}
	if cred.Uid == 0 || int(cred.Uid) == os.Getuid() {
		return ""
	}
	if gid, ok, _ := p.socketGID(); ok && (int(cred.Gid) == gid || slices.Contains(groupsOf(cred.Pid), gid)) {
		return ""
	}
	return fmt.Sprintf("uid %d (pid %d) may not claim workers: only root, the pool's user and pool.socket_group may", cred.Uid, cred.Pid)
}

// groupsOf lists a process's supplementary groups.
func groupsOf(pid int32) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return nil
}

func (p *Pool) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	var idle []*Record
	for _, w := range p.book.Workers {
		if w.State == workers.PoolIdle {
			idle = append(idle, w)
		}
	}
	sortBySince(idle)
	ids := make([]string, 0, len(idle))
	for _, w := range idle {
		ids = append(ids, w.Lease.InstanceID)
	}
	idleWant, stoppedWant, _ := p.s.Pool.PoolSize(p.now())
	return Status{Workers: p.book.count(), Idle: ids, Total: p.total, IdleCount: idleWant, StoppedCount: stoppedWant,
		MaxInstances: p.s.Pool.MaxInstances, Recent: slices.Clone(p.recent), LastPoll: p.lastPoll}
}

// serveMetrics serves /metrics on pool.metrics_listen, if set.
func (p *Pool) serveMetrics() (stop func(), err error) {
	if p.s.Pool.MetricsListen == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", p.s.Pool.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("pool.metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, nil
}

// QueryStatus asks the pool on socket for its status.
func QueryStatus(ctx context.Context, socket string) (Status, error) {
	var st Status
	a, err := workers.Ask(ctx, socket, workers.Request{Status: true}, 5*time.Second, 5*time.Second, func(string) {})
	switch {
	case err != nil:
		return st, fmt.Errorf("asking the pool on %s for its status: %w", socket, err)
	case a.Error != "":
		return st, errors.New(a.Error)
	}
	return st, json.Unmarshal(a.Status, &st)
}
