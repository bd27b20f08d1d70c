package stack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/ec2-executor/ec2-executor/engine"
)

// Workers without their own dockerd share the machine's, so what a job left on its
// worker outlives the worker unless the stack removes it. On EC2 the disk goes with
// the instance; here leftover networks would, run after run, use up dockerd's
// address pools (about 30 bridge networks) and fail every later job.

// wipeJob removes the containers, networks and volumes labelled with a job key from
// the shared dockerd, as the termination of that job's worker would.
func wipeJob(ctx context.Context, jobKey string, noted func([]string)) error {
	return wipe(ctx, jobFilter(jobKey), noted)
}

// JobContainers names the containers on the shared dockerd labelled with a job key.
func JobContainers(ctx context.Context, jobKey string) ([]string, error) {
	dc, err := dockerClient()
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	cs, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: jobFilter(jobKey)})
	var names []string
	for _, c := range cs {
		names = append(names, c.Names...)
	}
	return names, err
}

func jobFilter(jobKey string) filters.Args {
	return filters.NewArgs(filters.Arg("label", engine.LabelJob+"="+jobKey))
}

// wipeLeftovers removes every job's objects from the shared dockerd: at start, what a
// stack that died before its workers were terminated left; at Down, what workers
// still running leave (so no bridge outlives the stack on the host).
func wipeLeftovers(ctx context.Context) error {
	return wipe(ctx, filters.NewArgs(filters.Arg("label", engine.LabelJob)), func(names []string) {
		if len(names) > 0 {
			logf("stack: removing %d objects jobs left on the shared dockerd", len(names))
		}
	})
}

// wipe removes the objects f selects, containers first (they hold the networks and
// volumes). It names them to noted before removing any, so an observer never sees
// an object neither present nor noted.
func wipe(ctx context.Context, f filters.Args, noted func([]string)) error {
	dc, err := dockerClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	cs, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	ns, err := dc.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return err
	}
	vs, err := dc.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return err
	}
	var names []string
	for _, c := range cs {
		names = append(names, fmt.Sprintf("container %s", strings.Join(c.Names, ",")))
	}
	for _, n := range ns {
		names = append(names, "network "+n.Name)
	}
	for _, v := range vs.Volumes {
		names = append(names, "volume "+v.Name)
	}
	noted(names)
	var errs []error
	for _, c := range cs {
		errs = append(errs, dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}))
	}
	for _, n := range ns {
		errs = append(errs, dc.NetworkRemove(ctx, n.ID))
	}
	for _, v := range vs.Volumes {
		errs = append(errs, dc.VolumeRemove(ctx, v.Name, true))
	}
	return errors.Join(errs...)
}
