package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
)

// dockerSocket is where the worker's Docker Engine listens; it is only reached
// through the SSH connection, never over TCP.
const dockerSocket = "/var/run/docker.sock"

// ErrHostKeyMismatch means the worker presented a host key other than the one the
// driver generated for it: the connection is refused and never retried.
var ErrHostKeyMismatch = errors.New("worker presented an unexpected SSH host key")

// Target says how to reach one worker.
type Target struct {
	Addr      string // host:port of the worker's sshd
	User      string
	ClientKey string // OpenSSH PEM private key
	HostKey   string // pinned host public key, authorized_keys format
	// Deadline bounds the wait for sshd and Docker to answer; RetryInterval paces it.
	Deadline      time.Duration
	RetryInterval time.Duration
	// Boot, when set, makes Connect wait for the worker's first boot to finish (a
	// fresh worker's): Docker may answer before it is configured.
	Boot *BootMarkers
}

// Worker is an open SSH connection to a worker and a Docker client that talks
// through it.
type Worker struct {
	ssh    *ssh.Client
	docker *client.Client
	log    hclog.Logger
	// Boot is what the worker's boot reported, when Connect waited for it.
	Boot BootReport
}

// Connect dials the worker's sshd until it answers with the pinned host key and its
// Docker Engine answers a ping, or the target's deadline passes.
func Connect(ctx context.Context, t Target, log hclog.Logger) (*Worker, error) {
	cfg, err := t.clientConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.Deadline)
	defer cancel()
	for attempt := 1; ; attempt++ {
		w, err := dialOnce(ctx, t, cfg, log)
		if err == nil {
			return w, nil
		}
		var failed *BootFailedError
		if errors.Is(err, ErrHostKeyMismatch) || errors.As(err, &failed) {
			return nil, fmt.Errorf("connecting to %s: %w", t.Addr, err)
		}
		log.Debug("worker not reachable yet", "addr", t.Addr, "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
				return nil, fmt.Errorf("connecting to %s: no answer within %s (last error: %w)", t.Addr, t.Deadline, err)
			}
			return nil, fmt.Errorf("connecting to %s: %w", t.Addr, ctx.Err())
		case <-time.After(t.RetryInterval):
		}
	}
}

func (t Target) clientConfig() (*ssh.ClientConfig, error) {
	signer, err := ssh.ParsePrivateKey([]byte(t.ClientKey))
	if err != nil {
		return nil, fmt.Errorf("parsing client key: %w", err)
	}
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(t.HostKey))
	if err != nil {
		return nil, fmt.Errorf("parsing pinned host key: %w", err)
	}
	fixed := ssh.FixedHostKey(pinned)
	return &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			if fixed(host, remote, key) != nil {
				return ErrHostKeyMismatch
			}
			return nil
		},
		HostKeyAlgorithms: []string{pinned.Type()},
		Timeout:           10 * time.Second,
	}, nil
}

// bootPoll is how often the boot markers are looked at, at most: one command over
// the open connection, so a job starts soon after its worker is ready.
const bootPoll = 500 * time.Millisecond

// dialOnce makes one SSH connection, waits for the worker's boot if the target says
// so, and checks that Docker answers through it.
func dialOnce(ctx context.Context, t Target, cfg *ssh.ClientConfig, log hclog.Logger) (*Worker, error) {
	addr := t.Addr
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn = withQuickAck(conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		return nil, err
	}
	sc := ssh.NewClient(c, chans, reqs)
	var boot BootReport
	if t.Boot != nil {
		if boot, err = waitBooted(ctx, sc, *t.Boot, min(t.RetryInterval, bootPoll)); err != nil {
			sc.Close()
			return nil, err
		}
	}
	w, err := newWorker(sc, log)
	if err != nil {
		sc.Close()
		return nil, err
	}
	w.Boot = boot
	ping, err := w.docker.Ping(ctx)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("pinging Docker through SSH: %w", err)
	}
	w.docker.NegotiateAPIVersionPing(ping) // else the first request pings again to negotiate
	return w, nil
}

func newWorker(sc *ssh.Client, log hclog.Logger) (*Worker, error) {
	dc, err := client.NewClientWithOpts(
		client.WithHost("unix://"+dockerSocket), // used only to shape URLs: the dialer below goes through SSH
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return sc.DialContext(ctx, "unix", dockerSocket)
		}),
		client.WithAPIVersionNegotiation(), // workers may run older daemons (Debian's is API 1.41)
	)
	if err != nil {
		return nil, fmt.Errorf("creating Docker client: %w", err)
	}
	return &Worker{ssh: sc, docker: dc, log: log}, nil
}

// Close releases the Docker client and the SSH connection.
func (w *Worker) Close() error {
	if w.ssh == nil {
		return w.docker.Close()
	}
	return errors.Join(w.docker.Close(), w.ssh.Close())
}
