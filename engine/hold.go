package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"
)

// The mechanics of a job's connection holder (stages/holder.go is the feature): it
// serves the worker's Docker socket, through its one SSH connection, on a local Unix
// socket (mode 0600, in the driver's 0700 state directory: whoever connects has root
// on the worker), and a stage reaches Docker through it in a local round trip.

// Serve forwards each connection to socket to the worker's Docker socket through w's
// SSH connection. It returns when ctx ends, the SSH connection ends (the worker is
// gone or its sshd died), or stop is closed; the socket is removed then.
func (w *Worker) Serve(ctx context.Context, socket string, stop <-chan struct{}) error {
	_ = os.Remove(socket)
	old := syscall.Umask(0o177) // a Unix socket gets its mode at bind time: never open to others
	l, err := net.Listen("unix", socket)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("serving the worker's Docker socket: %w", err)
	}
	defer os.Remove(socket)
	defer l.Close()
	go w.accept(l)
	sshDone := make(chan error, 1)
	go func() { sshDone <- w.ssh.Wait() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-sshDone:
		return fmt.Errorf("the SSH connection to the worker ended: %v", err)
	case <-stop:
		return nil
	}
}

func (w *Worker) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go w.forward(c)
	}
}

// forward pipes one local connection to the worker's Docker socket.
func (w *Worker) forward(c net.Conn) {
	defer c.Close()
	r, err := w.ssh.Dial("unix", dockerSocket)
	if err != nil {
		w.log.Debug("holder: reaching the worker's Docker socket", "error", err)
		return
	}
	defer r.Close()
	Splice(c, r)
}

// Splice pipes a and b both ways until neither sends any more. A side that ends its
// writing is half-closed on the other (a script's stdin ends while its output still
// streams back).
func Splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go pipe(b, a, done)
	go pipe(a, b, done)
	<-done
	<-done
}

// pipe copies src to dst and then half-closes dst, or closes it when it cannot.
func pipe(dst, src net.Conn, done chan<- struct{}) {
	_, _ = io.Copy(dst, src)
	if hc, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	} else {
		_ = dst.Close()
	}
	done <- struct{}{}
}

// ConnectHeld reaches a worker through a holder's socket, or fails at once when no
// holder answers on it.
func ConnectHeld(ctx context.Context, socket string, log hclog.Logger) (*Worker, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, err
	}
	dc, err := client.NewClientWithOpts(client.WithHost("unix://"+socket), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("creating Docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ping, err := dc.Ping(pctx)
	if err != nil {
		dc.Close()
		return nil, fmt.Errorf("pinging Docker through the job's holder: %w", err)
	}
	dc.NegotiateAPIVersionPing(ping) // else the first request pings again to negotiate
	return &Worker{docker: dc, log: log}, nil
}

// errNoSSH is returned by what needs the SSH connection itself on a worker reached
// through a holder.
var errNoSSH = errors.New("reached through the job's holder: no SSH session of its own")
