package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
)

// jobServices are the payload's services (with pull policy, user, platform and every
// alias), else CUSTOM_ENV_CI_JOB_SERVICES for payloads without them, cut to the
// operator's services_limit.
func (d *Driver) jobServices(job Job) ([]Image, error) {
	services := job.Services
	if !job.ServicesSent {
		var err error
		if services, err = servicesFromEnv(d.Env.Vars["CI_JOB_SERVICES"]); err != nil {
			return nil, err
		}
	}
	if limit := d.Settings.Docker.ServicesLimit; limit >= 0 && len(services) > limit {
		return nil, jobError(fmt.Errorf("the job has %d services, more than the runner allows (docker.services_limit = %d)", len(services), limit))
	}
	return services, nil
}

func servicesFromEnv(raw string) ([]Image, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var list []struct {
		Name       string            `json:"name"`
		Alias      string            `json:"alias"`
		Entrypoint []string          `json:"entrypoint"`
		Command    []string          `json:"command"`
		Variables  map[string]string `json:"variables"`
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fmt.Errorf("CUSTOM_ENV_CI_JOB_SERVICES: %s", jsonProblem(err))
	}
	out := make([]Image, 0, len(list))
	for _, s := range list {
		img := Image{Name: s.Name, Alias: s.Alias, Entrypoint: s.Entrypoint, Command: s.Command}
		for k, v := range s.Variables {
			img.Variables = append(img.Variables, Variable{Key: k, Value: v, Public: true})
		}
		out = append(out, img)
	}
	return out, nil
}

// serviceAliases are the docker executor's automatic names for an image followed by
// the job's own aliases, split on commas and spaces. The automatic names follow
// gitlab-runner's SplitNameAndVersion (helpers/container/services): the reference as
// written (not normalized: "docker.io/library/x" stays as is) without tag, digest or
// the registry's port, with "/" turned into "__" and, when that differs, into "-".
// So registry.example.com:5050/group/postgres:16 answers to
// registry.example.com__group__postgres and registry.example.com-group-postgres.
func serviceAliases(image, alias string) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if name := serviceName(image); name != "" {
		add(strings.ReplaceAll(name, "/", "__"))
		add(strings.ReplaceAll(name, "/", "-"))
	}
	for _, a := range strings.Fields(strings.ReplaceAll(alias, ",", " ")) {
		add(a)
	}
	return out
}

// registryPort matches a reference's name as registry, optional port and path, as
// gitlab-runner's referenceRegexpNoPort does.
var registryPort = regexp.MustCompile(`^(.*?)(|:[0-9]+)(|/.*)$`)

// serviceName is the service's name without tag, digest or registry port, or ""
// when image is no reference at all (the runner then gives no automatic alias).
func serviceName(image string) string {
	m := reference.ReferenceRegexp.FindStringSubmatch(image)
	if len(m) == 0 {
		return ""
	}
	parts := registryPort.FindStringSubmatch(m[1])
	return parts[1] + parts[3]
}

// claimAliases returns the aliases no earlier service of the job has, and marks them
// taken. As in the docker executor, a second postgres:16 service gets only its own
// aliases, and one with none left is not started at all.
func claimAliases(taken map[string]bool, aliases []string) []string {
	var free []string
	for _, a := range aliases {
		if !taken[a] {
			taken[a] = true
			free = append(free, a)
		}
	}
	return free
}

// startServices creates and starts every service on the job's network, then waits
// for their exposed ports. A service that never opens them is a warning with its
// logs, never a failure, as in the docker executor.
func (d *Driver) startServices(ctx context.Context, w *engine.Worker, creds *dockerauth.Resolver, st *State, job Job, p plan) error {
	var started []engine.Service
	var names []string
	taken := map[string]bool{}
	for i, svc := range p.services {
		aliases := claimAliases(taken, serviceAliases(svc.Name, svc.Alias))
		if len(aliases) == 0 {
			d.Log.Warn("Service " + svc.Name + " is already created. Ignoring.")
			continue
		}
		image, err := d.images(creds).Ensure(ctx, w, svc.Name, svc.ExecutorOpts.Docker.Platform, p.servicePolicies[i])
		if err != nil {
			return err
		}
		id, err := w.CreateContainer(ctx, engine.ContainerSpec{Name: fmt.Sprintf("ec2x-%s-svc-%d", st.JobKey, i), Image: image,
			Cmd: svc.Command, Entrypoint: svc.Entrypoint, User: string(svc.ExecutorOpts.Docker.User), Platform: svc.ExecutorOpts.Docker.Platform,
			Env: serviceEnv(job, svc), JobKey: st.JobKey, Mounts: d.mounts(st.JobKey), Binds: d.binds(), Network: jobNetwork(st.JobKey),
			Aliases: aliases, Host: d.serviceHost(), Service: true})
		if err != nil {
			return err
		}
		s, err := w.StartService(ctx, id, jobNetwork(st.JobKey))
		if err != nil {
			return err
		}
		d.Log.Info("Started service "+svc.Name+" as "+strings.Join(aliases, ", "), "container", id[:12])
		started, names = append(started, s), append(names, svc.Name)
	}
	for i, s := range started {
		d.waitForService(ctx, w, names[i], s)
	}
	return nil
}

// serviceEnv is the public job variables plus the service's own, as the docker
// executor gives services (user CI/CD variables are not public).
func serviceEnv(job Job, svc Image) []string {
	var env []string
	for _, v := range job.Variables {
		if v.Public {
			env = append(env, v.Key+"="+v.Value)
		}
	}
	for _, v := range svc.Variables {
		env = append(env, v.Key+"="+v.Value)
	}
	return env
}

// waitForService waits until any of the service's health-check ports accepts, as
// the docker executor's health check does; a service that never opens one (or
// exits first) is a warning with its last log lines, and the job goes on.
func (d *Driver) waitForService(ctx context.Context, w *engine.Worker, name string, s engine.Service) {
	timeout := d.Settings.Docker.WaitForServicesTimeout.Duration
	wctx, cancel := context.WithTimeout(ctx, timeout)
	err := w.WaitService(wctx, s, 250*time.Millisecond)
	cancel()
	if err == nil || ctx.Err() != nil {
		return
	}
	logs, _ := w.Logs(ctx, s.ID, 50)
	d.Log.Warn("Service " + name + " did not come up (" + err.Error() + "); continuing. Its last log lines:\n" + logs)
}
