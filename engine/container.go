package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
)

// BashDetectShellScript is the docker executor's start command for job containers: the
// first of bash or sh found, so images without bash still run the runner's scripts.
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

// ContainerSpec describes a job container that is started once per stage with the
// stage's script on stdin.
type ContainerSpec struct {
	Name       string
	Image      string
	Entrypoint []string // nil keeps the image's entrypoint
	JobKey     string
	Mounts     []Mount
}

// CreateVolume creates a named volume labelled with the job key.
func (w *Worker) CreateVolume(ctx context.Context, name, jobKey string) error {
	_, err := w.docker.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{LabelJob: jobKey}})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}

// CreateContainer creates (but does not start) a job container and returns its id.
func (w *Worker) CreateContainer(ctx context.Context, s ContainerSpec) (string, error) {
	mounts := make([]mount.Mount, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target})
	}
	cfg := &container.Config{
		Image:        s.Image,
		Entrypoint:   s.Entrypoint,
		Cmd:          []string{"sh", "-c", BashDetectShellScript},
		Labels:       map[string]string{LabelJob: s.JobKey},
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		OpenStdin:    true,
		StdinOnce:    true,
	}
	resp, err := w.docker.ContainerCreate(ctx, cfg, &container.HostConfig{Mounts: mounts}, nil, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("creating container %s from %s: %w", s.Name, s.Image, err)
	}
	return resp.ID, nil
}

// RemoveJob force-removes every container and then every volume labelled with the
// job key. Missing objects are not an error, so cleanup can run twice.
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
