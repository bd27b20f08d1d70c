package stages

import (
	"context"
	"time"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
)

// jobImage is the payload's image, else CI_JOB_IMAGE, else the operator's default.
func (d *Driver) jobImage(job Job) string {
	switch {
	case job.Image.Name != "":
		return job.Image.Name
	case d.Env.Vars["CI_JOB_IMAGE"] != "":
		return d.Env.Vars["CI_JOB_IMAGE"]
	default:
		return d.Settings.Job.DefaultImage
	}
}

// createContainers pulls the job image and creates the builds and cache volumes and
// the build container.
func (d *Driver) createContainers(ctx context.Context, w *engine.Worker, st *State, job Job) error {
	if err := d.pull(ctx, w, st.Image, job); err != nil {
		return err
	}
	mounts := []engine.Mount{
		{Volume: "ec2x-" + st.JobKey + "-builds", Target: d.Settings.Job.BuildsDir},
		{Volume: "ec2x-" + st.JobKey + "-cache", Target: d.Settings.Job.CacheDir},
	}
	for _, m := range mounts {
		if err := w.CreateVolume(ctx, m.Volume, st.JobKey); err != nil {
			return err
		}
	}
	id, err := w.CreateContainer(ctx, engine.ContainerSpec{Name: "ec2x-" + st.JobKey + "-build", Image: st.Image,
		Entrypoint: job.Image.Entrypoint, JobKey: st.JobKey, Mounts: mounts})
	if err != nil {
		return err
	}
	st.BuildContainer = id
	return nil
}

// pull resolves the image's credential as the docker executor does and pulls it,
// saying in the job log which source was used (never the secret).
func (d *Driver) pull(ctx context.Context, w *engine.Worker, image string, job Job) error {
	var creds []dockerauth.Credential
	for _, c := range job.RegistryCredentials() {
		creds = append(creds, dockerauth.Credential{Key: c.URL, Username: c.Username, Password: c.Password})
	}
	r := dockerauth.NewResolver(dockerauth.Sources{DockerAuthConfig: d.Env.Vars["DOCKER_AUTH_CONFIG"], JobCredentials: creds})
	for _, warning := range r.Warnings {
		d.Log.Warn(warning)
	}
	cred, ok, err := r.For(image)
	if err != nil {
		return err
	}
	auth, source := "", "no credentials"
	if ok {
		if auth, err = cred.Encode(); err != nil {
			return err
		}
		source = "credentials from " + cred.Source + " for " + cred.Key
	}
	d.Log.Info("Pulling image "+image+" with "+source, "image", image)
	start := d.Now()
	if err := w.Pull(ctx, image, auth); err != nil {
		return err
	}
	d.Log.Info("Pulled image "+image, "after", d.Now().Sub(start).Round(time.Millisecond).String())
	return nil
}
