package stages

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/ec2-executor/ec2-executor/cloudinit"
	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
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

// plan is what prepare will run, checked against the operator's allow-lists before
// anything is launched or pulled.
type plan struct {
	image    string
	policies []string
	services []Image
	// servicePolicies[i] are services[i]'s pull policies.
	servicePolicies [][]string
}

func (d *Driver) planContainers(job Job) (plan, error) {
	p := plan{image: d.jobImage(job)}
	if err := checkReference(p.image, "image"); err != nil {
		return p, err
	}
	if err := checkAllowed(p.image, d.Settings.Docker.AllowedImages, "image", "docker.allowed_images"); err != nil {
		return p, err
	}
	var err error
	if p.policies, err = pullPolicies(job.Image.PullPolicy, d.Settings.Docker); err != nil {
		return p, err
	}
	if p.services, err = d.jobServices(job); err != nil {
		return p, err
	}
	for _, s := range p.services {
		if err := checkReference(s.Name, "service"); err != nil {
			return p, err
		}
		if err := checkAllowed(s.Name, d.Settings.Docker.AllowedServices, "service", "docker.allowed_services"); err != nil {
			return p, err
		}
		pol, err := pullPolicies(s.PullPolicy, d.Settings.Docker)
		if err != nil {
			return p, err
		}
		p.servicePolicies = append(p.servicePolicies, pol)
	}
	return p, nil
}

// checkReference refuses a malformed image name before anything is launched.
func checkReference(image, what string) error {
	if _, err := dockerauth.ImagePath(image); err != nil {
		return jobError(fmt.Errorf("%s %q is not a valid image reference", what, image))
	}
	return nil
}

// createContainers sets the worker up as the docker executor would for the job: the
// images, the job's network and volumes, the services, then the helper container
// (predefined stages) and the build container (the job's image).
func (d *Driver) createContainers(ctx context.Context, w *engine.Worker, st *State, job Job, p plan, c Clients) error {
	creds := d.credentials(ctx, c, w, job)
	helper, err := d.pullHelper(ctx, w, creds)
	if err != nil {
		return err
	}
	image, err := d.images(creds).Ensure(ctx, w, p.image, job.Image.ExecutorOpts.Docker.Platform, p.policies)
	if err != nil {
		return err
	}
	if err := w.CreateNetwork(ctx, jobNetwork(st.JobKey), st.JobKey); err != nil {
		return err
	}
	for _, m := range d.mounts(st.JobKey) {
		if err := w.CreateVolume(ctx, m.Volume, st.JobKey); err != nil {
			return err
		}
	}
	if err := d.startServices(ctx, w, creds, st, job, p); err != nil {
		return err
	}
	if st.HelperContainer, err = w.CreateContainer(ctx, d.helperSpec(st, job, helper)); err != nil {
		return err
	}
	st.BuildContainer, err = w.CreateContainer(ctx, d.buildSpec(st, job, image))
	return err
}

func (d *Driver) pullHelper(ctx context.Context, w *engine.Worker, creds *dockerauth.Resolver) (string, error) {
	arch, err := w.Arch(ctx)
	if err != nil {
		return "", err
	}
	helper, err := helperImage(d.Settings.Job.HelperImage, d.Env.Vars["CI_RUNNER_VERSION"], arch)
	if err != nil {
		return "", err
	}
	// The helper's tag names a runner version: what is on the worker is what a pull would bring.
	return d.images(creds).Ensure(ctx, w, helper, "", []string{settings.PullIfNotPresent})
}

// helperSetup gives the helper image the `gitlab-runner` command the runner's scripts
// call (the image ships only gitlab-runner-helper).
const helperSetup = `if [ ! -e /usr/bin/gitlab-runner ] && [ -x /usr/bin/gitlab-runner-helper ]; then
	ln -s gitlab-runner-helper /usr/bin/gitlab-runner
fi
`

// helperShell runs a predefined stage's script: gitlab-runner-build reads it from
// stdin with umask 0000, as in the docker executor.
const helperShell = `if command -v gitlab-runner-build >/dev/null 2>&1; then exec gitlab-runner-build; fi
` + engine.BashDetectShellScript

func (d *Driver) helperSpec(st *State, job Job, image string) engine.ContainerSpec {
	return engine.ContainerSpec{Name: "ec2x-" + st.JobKey + "-helper", Image: image, Setup: helperSetup,
		Env: jobEnv(job), Hostname: hostname(st.JobKey), JobKey: st.JobKey, Mounts: d.mounts(st.JobKey), Binds: d.binds(),
		Network: jobNetwork(st.JobKey), Host: d.networkHost()}
}

func (d *Driver) buildSpec(st *State, job Job, image string) engine.ContainerSpec {
	opts := job.Image.ExecutorOpts.Docker
	user := d.Settings.Docker.User
	if user == "" {
		user = string(opts.User)
	}
	entrypoint := job.Image.Entrypoint
	if d.Settings.Docker.DisableEntrypointOverwrite {
		entrypoint = nil
	}
	env, binds := jobEnv(job), d.binds()
	if d.Settings.Registry.InJobECR {
		env = append(env, "DOCKER_CONFIG="+cloudinit.JobDockerDir)
		binds = append(binds, cloudinit.JobDockerDir+":"+cloudinit.JobDockerDir+":ro",
			cloudinit.JobECRHelper+":/usr/local/bin/docker-credential-ecr-login:ro")
	}
	return engine.ContainerSpec{Name: "ec2x-" + st.JobKey + "-build", Image: image, Entrypoint: entrypoint, User: user,
		Env: env, Hostname: hostname(st.JobKey), Platform: opts.Platform, JobKey: st.JobKey,
		Mounts: d.mounts(st.JobKey), Binds: binds, Network: jobNetwork(st.JobKey), Host: d.buildHost()}
}

// jobEnv is every job variable, as the docker executor puts them in the build
// container's environment.
func jobEnv(job Job) []string {
	env := make([]string, 0, len(job.Variables))
	for _, v := range job.Variables {
		env = append(env, v.Key+"="+v.Value)
	}
	return env
}

func hostname(key string) string { return "ec2-executor-" + key }

// jobNetwork is the job's bridge network, on which services answer to their aliases.
func jobNetwork(key string) string { return "ec2x-" + key }

// mounts are the job's named volumes: builds, cache, and one per container-only
// path in docker.volumes.
func (d *Driver) mounts(key string) []engine.Mount {
	var m []engine.Mount
	taken := map[string]bool{}
	for _, v := range d.Settings.Docker.Volumes {
		taken[volumeTarget(v)] = true
	}
	// As in the docker executor, an operator's volume at the builds or cache
	// directory (GitLab's examples have volumes = ["/cache"]) replaces the job's own:
	// two mounts at one path would fail every job.
	for _, own := range []struct{ name, target string }{{"builds", d.Settings.Job.BuildsDir}, {"cache", d.Settings.Job.CacheDir}} {
		if !taken[path.Clean(own.target)] {
			m = append(m, engine.Mount{Volume: "ec2x-" + key + "-" + own.name, Target: own.target})
		}
	}
	for n, v := range d.Settings.Docker.Volumes {
		if !strings.Contains(v, ":") {
			m = append(m, engine.Mount{Volume: fmt.Sprintf("ec2x-%s-vol-%d", key, n), Target: v})
		}
	}
	return m
}

// volumeTarget is the container path of a docker.volumes entry: "path" or
// "host:path[:mode]".
func volumeTarget(v string) string {
	parts := strings.Split(v, ":")
	if len(parts) == 1 {
		return path.Clean(parts[0])
	}
	return path.Clean(parts[1])
}

// binds are docker.volumes entries with a host path (the Docker socket, a host dir).
func (d *Driver) binds() []string {
	var b []string
	for _, v := range d.Settings.Docker.Volumes {
		if strings.Contains(v, ":") {
			b = append(b, v)
		}
	}
	return b
}

func (d *Driver) buildHost() engine.HostOptions {
	o := d.Settings.Docker
	shm, _ := settings.Bytes(o.ShmSize)
	mem, _ := settings.Bytes(o.Memory)
	cpus, _ := settings.NanoCPUs(o.CPUs)
	return engine.HostOptions{Privileged: o.Privileged, CapAdd: o.CapAdd, CapDrop: o.CapDrop, ShmSize: shm,
		Memory: mem, NanoCPUs: cpus, DNS: o.DNS, DNSSearch: o.DNSSearch, ExtraHosts: o.ExtraHosts, Sysctls: o.Sysctls}
}

// serviceHost is what the docker executor gives a service container: the network
// options, privilege (services_privileged, else privileged), the job's shm size and
// the services' own limits, security options and tmpfs mounts; never the build
// container's capabilities or limits.
func (d *Driver) serviceHost() engine.HostOptions {
	o := d.Settings.Docker
	shm, _ := settings.Bytes(o.ShmSize)
	mem, _ := settings.Bytes(o.ServiceMemory)
	cpus, _ := settings.NanoCPUs(o.ServiceCPUs)
	return engine.HostOptions{Privileged: o.ServicePrivileged(), ShmSize: shm, Memory: mem, NanoCPUs: cpus,
		DNS: o.DNS, DNSSearch: o.DNSSearch, ExtraHosts: o.ExtraHosts, SecurityOpt: o.ServicesSecurityOpt, Tmpfs: o.ServicesTmpfs}
}

// networkHost gives the helper container the operator's network options; privilege
// and limits are for the job's own containers.
func (d *Driver) networkHost() engine.HostOptions {
	o := d.Settings.Docker
	return engine.HostOptions{DNS: o.DNS, DNSSearch: o.DNSSearch, ExtraHosts: o.ExtraHosts}
}
