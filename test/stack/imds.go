package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
)

// The played workers' instance metadata service. On EC2 each instance reaches its
// own at 169.254.169.254; here every played worker's sshd runs on this machine, so
// the stack serves one on 169.254.169.254 (added to lo for the stack's life) and
// tells the asking worker by the process that opened the connection: an sshd
// forwarding for its client, a descendant of that worker's sshd. It keeps IMDSv2's
// rules (a PUT for a session token with a TTL header; every read needs the token,
// bound to the instance it was given to) and serves the spot notices a test
// injects.

// metadataHost is the address every instance reaches its metadata on.
const metadataHost = "169.254.169.254"

// IMDS serves the played workers' instance metadata.
type IMDS struct {
	b         *Booter
	srv       *http.Server
	mu        sync.Mutex
	actions   map[string]engine.SpotNotice // instance → its spot instance-action
	rebalance map[string]time.Time
	tokens    map[string]string // token → instance
	reads     map[string]int    // instance → metadata reads, for tests to wait on
}

func (s *Stack) startIMDS(context.Context) error {
	out, err := exec.Command("ip", "addr", "add", metadataHost+"/32", "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") && !strings.Contains(string(out), "already assigned") { // a killed run's
		return fmt.Errorf("adding %s to lo: %v: %s", metadataHost, err, out)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(metadataHost, "80"))
	if err != nil {
		return err
	}
	m := &IMDS{b: s.Boot, actions: map[string]engine.SpotNotice{}, rebalance: map[string]time.Time{},
		tokens: map[string]string{}, reads: map[string]int{}}
	m.srv = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(l) }()
	s.IMDS = m
	return nil
}

func (m *IMDS) stop() {
	_ = m.srv.Close()
	_ = exec.Command("ip", "addr", "del", metadataHost+"/32", "dev", "lo").Run()
}

// NoticeSpot makes EC2 announce instance id's reclaim (action "terminate", "stop"
// or "hibernate") at at.
func (m *IMDS) NoticeSpot(id, action string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions[id] = engine.SpotNotice{Action: action, Time: at.UTC().Truncate(time.Second)}
}

// RecommendRebalance makes EC2 recommend instance id's rebalance, noticed at at.
func (m *IMDS) RecommendRebalance(id string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebalance[id] = at.UTC().Truncate(time.Second)
}

// Reads is how many metadata documents instance id has read.
func (m *IMDS) Reads(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads[id]
}

func (m *IMDS) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "a token's TTL is 1 to 21600 seconds", http.StatusBadRequest)
			return
		}
		id, err := m.b.whoDialed(r.RemoteAddr)
		if err != nil {
			logf("imds: %v", err)
			http.Error(w, "", http.StatusForbidden)
			return
		}
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		token := hex.EncodeToString(b)
		m.mu.Lock()
		m.tokens[token] = id
		m.mu.Unlock()
		_, _ = w.Write([]byte(token))
	})
	mux.HandleFunc("GET /latest/meta-data/instance-id", m.read(func(id string) (any, bool) { return id, true }))
	mux.HandleFunc("GET /latest/meta-data/spot/instance-action", m.read(func(id string) (any, bool) {
		n, ok := m.actions[id]
		return map[string]string{"action": n.Action, "time": n.Time.Format(time.RFC3339)}, ok
	}))
	mux.HandleFunc("GET /latest/meta-data/events/recommendations/rebalance", m.read(func(id string) (any, bool) {
		t, ok := m.rebalance[id]
		return map[string]string{"noticeTime": t.Format(time.RFC3339)}, ok
	}))
	return mux
}

// read serves one document of the asking instance: 401 without a token it was
// given, 404 when it has none.
func (m *IMDS) read(doc func(id string) (any, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := m.b.whoDialed(r.RemoteAddr)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil || m.tokens[r.Header.Get("X-aws-ec2-metadata-token")] != id {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		m.reads[id]++
		v, ok := doc(id)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if s, isText := v.(string); isText {
			_, _ = w.Write([]byte(s))
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// whoDialed finds the played worker whose sshd opened the connection from remote:
// the socket's inode (/proc/net/tcp), the process holding it, and the worker sshd
// it descends from.
func (b *Booter) whoDialed(remote string) (string, error) {
	host, port, err := net.SplitHostPort(remote)
	if err != nil || host != metadataHost {
		return "", fmt.Errorf("a metadata request from %s, not from a worker's sshd", remote)
	}
	p, _ := strconv.Atoi(port)
	inode, err := socketInode(fmt.Sprintf("FEA9FEA9:%04X", p))
	if err != nil {
		return "", err
	}
	parents := parentsOf()
	b.mu.Lock()
	sshd := map[int]string{}
	for id, pr := range b.sshd {
		if pr != nil {
			sshd[pr.cmd.Process.Pid] = id
		}
	}
	b.mu.Unlock()
	for pid := range parents {
		if id := workerOf(pid, parents, sshd); id != "" && holdsSocket(pid, inode) {
			return id, nil
		}
	}
	return "", fmt.Errorf("no worker's sshd holds the socket of the metadata request from %s", remote)
}

// workerOf is the worker whose sshd pid descends from, or "".
func workerOf(pid int, parents map[int]int, sshd map[int]string) string {
	for at, hops := pid, 0; at > 1 && hops < 64; at, hops = parents[at], hops+1 {
		if id, ok := sshd[at]; ok {
			return id
		}
	}
	return ""
}

// socketInode is the inode of the TCP socket whose local address is local (in
// /proc/net/tcp's hex form).
func socketInode(local string) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == local && strings.HasSuffix(fields[2], ":0050") {
			return fields[9], nil
		}
	}
	return "", fmt.Errorf("no socket %s in /proc/net/tcp", local)
}

// parentsOf maps every process to its parent.
func parentsOf() map[int]int {
	out := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[end+1:])
		pid, _ := strconv.Atoi(s[:strings.IndexByte(s, ' ')])
		if len(fields) > 1 {
			out[pid], _ = strconv.Atoi(fields[1])
		}
	}
	return out
}

// holdsSocket reports whether process pid has the socket inode open.
func holdsSocket(pid int, inode string) bool {
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil && link == want {
			return true
		}
	}
	return false
}
