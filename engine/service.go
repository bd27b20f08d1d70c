package engine

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Service is a started service container as its network sees it.
type Service struct {
	ID string
	IP string
	// Ports are the ones a readiness wait checks, as the docker executor's health
	// check picks them: HEALTHCHECK_TCP_PORT from the service's environment, else its
	// image's exposed TCP ports (20 at most). Any one that accepts means ready.
	Ports []int
}

// maxPortsCheck is the docker executor's bound on the ports a health check dials.
const maxPortsCheck = 20

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
	s.Ports, err = healthPorts(info.Config)
	return s, err
}

// healthPorts are the ports a readiness wait dials, as the docker executor's
// getContainerExposedPorts chooses them.
func healthPorts(cfg *container.Config) ([]int, error) {
	for _, env := range cfg.Env {
		if k, v, ok := strings.Cut(env, "="); ok && strings.EqualFold(k, "HEALTHCHECK_TCP_PORT") {
			port, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("invalid health check tcp port: %v", v)
			}
			return []int{int(port)}, nil
		}
	}
	var ports []int
	for p := range cfg.ExposedPorts {
		if p.Proto() == "tcp" {
			ports = append(ports, p.Int())
		}
	}
	sort.Ints(ports)
	if len(ports) > maxPortsCheck {
		ports = ports[:maxPortsCheck]
	}
	return ports, nil
}

// WaitService waits until any of the service's ports accepts a connection from the
// worker, as the docker executor's health check does. It gives up early, with the
// exit code, when the service's container stops.
func (w *Worker) WaitService(ctx context.Context, s Service, interval time.Duration) error {
	if len(s.Ports) == 0 {
		return nil
	}
	within := ""
	if deadline, ok := ctx.Deadline(); ok {
		within = " within " + time.Until(deadline).Round(time.Second).String()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, len(s.Ports)+1)
	for _, port := range s.Ports {
		go func() { ready <- w.WaitTCP(ctx, ServiceAddr(s, port), interval) }()
	}
	go func() { ready <- w.watchExit(ctx, s, interval) }()
	err := <-ready
	if err != nil && ctx.Err() == nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("nothing accepted connections on port %s%s", joinPorts(s.Ports), within)
	}
	return nil
}

// watchExit returns an error once the service's container is no longer running.
func (w *Worker) watchExit(ctx context.Context, s Service, interval time.Duration) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		info, err := w.docker.ContainerInspect(ctx, s.ID)
		if err == nil && info.State != nil && !info.State.Running && !info.State.Restarting {
			return fmt.Errorf("the service's container exited with code %d before it opened port %s", info.State.ExitCode, joinPorts(s.Ports))
		}
	}
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, " or ")
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
