package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// predefinedNetworks are Docker's own, which cannot be removed.
var predefinedNetworks = map[string]bool{"bridge": true, "host": true, "none": true}

// Wipe removes every container, volume and user network on the worker's Docker
// Engine, labelled by the driver or not (a job with the Docker socket can make its
// own), and then checks nothing is left. Images stay: the layer cache is the point
// of reusing a worker. Only for a worker that serves one job at a time.
func (w *Worker) Wipe(ctx context.Context) error {
	var errs []error
	cs, err := w.docker.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range cs {
		if err := w.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", short(c.ID), err))
		}
	}
	nets, err := w.docker.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing networks: %w", err))...)
	}
	for _, n := range nets {
		if !predefinedNetworks[n.Name] {
			if err := w.docker.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			}
		}
	}
	vs, err := w.docker.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing volumes: %w", err))...)
	}
	for _, v := range vs.Volumes {
		if err := w.docker.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return w.wiped(ctx)
}

// wiped checks the engine holds no container, volume or user network.
func (w *Worker) wiped(ctx context.Context) error {
	cs, err := w.docker.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return err
	}
	vs, err := w.docker.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return err
	}
	nets, err := w.docker.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return err
	}
	left := len(cs) + len(vs.Volumes)
	for _, n := range nets {
		if !predefinedNetworks[n.Name] {
			left++
		}
	}
	if left > 0 {
		return fmt.Errorf("%d containers, volumes or networks are still there after the wipe", left)
	}
	return nil
}
