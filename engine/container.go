package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BashDetectShellScript is the docker executor's shell for job scripts: the first of
// bash or sh found, so images without bash still run the runner's scripts.
const BashDetectShellScript = `if [ -x /usr/local/bin/bash ]; then
	exec /usr/local/bin/bash $@
elif [ -x /usr/bin/bash ]; then
	exec /usr/bin/bash $@
elif [ -x /bin/bash ]; then
	exec /bin/bash $@
elif [ -x /usr/local/bin/sh ]; then
	exec /usr/local/bin/sh $@
elif [ -x /usr/bin/sh ]; then
	exec /usr/bin/sh $@
elif [ -x /bin/sh ]; then
	exec /bin/sh $@
elif [ -x /busybox/sh ]; then
	exec /busybox/sh $@
else
	echo shell not found
	exit 1
fi

`

// LabelJob marks every container and volume the driver creates with the job key.
const LabelJob = "com.ec2-executor.job"

// Mount is a named volume mounted into the job's containers.
type Mount struct {
	Volume string
	Target string
}

// ContainerSpec describes one of the job's containers. Job containers (helper and
// build) run a keeper after the image's entrypoint, and each stage's script is exec'd
// into them (keeper.go); services run their own command.
type ContainerSpec struct {
	Name  string
	Image string
	// Cmd is a service's command (nil keeps the image's).
	Cmd []string
	// Setup is shell a job container's keeper runs once, before any script.
	Setup      string
	Entrypoint []string // nil keeps the image's entrypoint
	User       string
	Env        []string
	Hostname   string
	Platform   string
	JobKey     string
	Mounts     []Mount
	// Binds are the operator's host:container[:ro] volumes.
	Binds []string
	// Network is the job's network; Aliases name the container on it.
	Network string
	Aliases []string
	Host    HostOptions
	// Service containers run detached, without stdin.
	Service bool
}

// HostOptions are the operator's [docker] options for a container.
type HostOptions struct {
	Privileged      bool
	CapAdd, CapDrop []string
	ShmSize, Memory int64
	NanoCPUs        int64
	DNS, DNSSearch  []string
	ExtraHosts      []string
	Sysctls         map[string]string
	SecurityOpt     []string
	Tmpfs           map[string]string
}

// CreateVolume creates a named volume labelled with the job key.
func (w *Worker) CreateVolume(ctx context.Context, name, jobKey string) error {
	_, err := w.docker.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{LabelJob: jobKey}})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}

// CreateNetwork creates the job's bridge network, on which services are reached by
// their aliases.
func (w *Worker) CreateNetwork(ctx context.Context, name, jobKey string) error {
	_, err := w.docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: map[string]string{LabelJob: jobKey}})
	if err != nil {
		return fmt.Errorf("creating network %s: %w", name, err)
	}
	return nil
}

// CreateContainer creates (but does not start) a container and returns its id.
func (w *Worker) CreateContainer(ctx context.Context, s ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		User:       s.User,
		Env:        s.Env,
		Hostname:   s.Hostname,
		Labels:     map[string]string{LabelJob: s.JobKey},
	}
	if !s.Service {
		cfg.Cmd = keeperCmd(s.Setup)
		// Stdin stays open with nobody writing: the keeper waits on it.
		cfg.AttachStdout, cfg.AttachStderr = true, true
		cfg.OpenStdin = true
	}
	var nets *network.NetworkingConfig
	if s.Network != "" {
		nets = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {Aliases: s.Aliases}}}
	}
	resp, err := w.docker.ContainerCreate(ctx, cfg, hostConfig(s), nets, platform(s.Platform), s.Name)
	if err != nil {
		return "", fmt.Errorf("creating container %s from %s: %w", s.Name, s.Image, err)
	}
	return resp.ID, nil
}

func hostConfig(s ContainerSpec) *container.HostConfig {
	mounts := make([]mount.Mount, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target})
	}
	h := s.Host
	hc := &container.HostConfig{
		Mounts: mounts, Binds: s.Binds, NetworkMode: container.NetworkMode(s.Network),
		Privileged: h.Privileged, CapAdd: h.CapAdd, CapDrop: h.CapDrop, ShmSize: h.ShmSize,
		Resources: container.Resources{Memory: h.Memory, NanoCPUs: h.NanoCPUs},
		DNS:       h.DNS, DNSSearch: h.DNSSearch, ExtraHosts: h.ExtraHosts, Sysctls: h.Sysctls,
		SecurityOpt: h.SecurityOpt, Tmpfs: h.Tmpfs,
	}
	if !s.Service {
		// A job container's own output is only its entrypoint's, up to the keeper's
		// ready line: the scripts' output streams through their execs and is never
		// logged. The first stage reads the entrypoint's from the log (Worker.Ready),
		// so the log driver is one that can be read back whatever the worker's
		// default, and is kept small in case an entrypoint leaves a chatty process.
		hc.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "1"}}
	}
	return hc
}

// platform parses "os/arch[/variant]"; empty means the worker's own.
func platform(p string) *ocispec.Platform {
	if p == "" {
		return nil
	}
	parts := strings.SplitN(p, "/", 3)
	out := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		out.Architecture = parts[1]
	}
	if len(parts) > 2 {
		out.Variant = parts[2]
	}
	return out
}

// RemoveJob force-removes every container, then every network and volume labelled
// with the job key. Missing objects are not an error, so cleanup can run twice.
func (w *Worker) RemoveJob(ctx context.Context, jobKey string) error {
	f := labelFilter(jobKey)
	cs, err := w.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing job containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		err := w.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID[:12], err))
		}
	}
	nets, err := w.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing job networks: %w", err))
	}
	for _, n := range nets {
		if err := w.docker.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
	vs, err := w.docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing job volumes: %w", err))...)
	}
	for _, v := range vs.Volumes {
		if err := w.docker.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}
