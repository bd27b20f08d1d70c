package engine

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Service is a started service container as its network sees it.
type Service struct {
	ID string
	IP string
	// Ports are the image's exposed TCP ports, the ones a readiness wait checks.
	Ports []int
}

// StartService starts a service container and reports its address on network.
func (w *Worker) StartService(ctx context.Context, id, network string) (Service, error) {
	if err := w.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return Service{}, fmt.Errorf("starting service container %s: %w", short(id), err)
	}
	info, err := w.docker.ContainerInspect(ctx, id)
	if err != nil {
		return Service{}, fmt.Errorf("inspecting service container %s: %w", short(id), err)
	}
	s := Service{ID: id}
	if ep, ok := info.NetworkSettings.Networks[network]; ok {
		s.IP = ep.IPAddress
	}
	for p := range info.Config.ExposedPorts {
		if p.Proto() == "tcp" {
			s.Ports = append(s.Ports, p.Int())
		}
	}
	sort.Ints(s.Ports)
	return s, nil
}

// WaitTCP dials addr from the worker (through the SSH connection, as a process on the
// worker would) until it accepts or ctx ends.
func (w *Worker) WaitTCP(ctx context.Context, addr string, interval time.Duration) error {
	if w.ssh == nil {
		return errNoSSH
	}
	for {
		conn, err := w.ssh.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing accepted connections on %s: %w", addr, err)
		case <-time.After(interval):
		}
	}
}

// ServiceAddr joins a service's IP and port.
func ServiceAddr(s Service, port int) string { return net.JoinHostPort(s.IP, strconv.Itoa(port)) }

// Logs returns the last lines a container wrote, stdout and stderr interleaved.
func (w *Worker) Logs(ctx context.Context, id string, tail int) (string, error) {
	rc, err := w.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(tail)})
	if err != nil {
		return "", fmt.Errorf("reading logs of %s: %w", short(id), err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return out.String(), fmt.Errorf("reading logs of %s: %w", short(id), err)
	}
	return out.String(), nil
}
