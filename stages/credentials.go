package stages

import (
	"context"
	"path/filepath"
	"time"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
)

// ecrTokenMargin is how long before expiry a cached ECR token is replaced (they live
// 12 hours): long enough for any prepare's pulls.
const ecrTokenMargin = 30 * time.Minute

// credentials builds the job's credential resolver once per prepare: the job's
// DOCKER_AUTH_CONFIG, the manager's config.json, the payload's credentials[], then
// ECR tokens as the settings choose.
func (d *Driver) credentials(ctx context.Context, c Clients, w *engine.Worker, job Job) *dockerauth.Resolver {
	var creds []dockerauth.Credential
	for _, rc := range job.RegistryCredentials() {
		creds = append(creds, dockerauth.Credential{Key: rc.URL, Username: rc.Username, Password: rc.Password})
	}
	path, config := d.managerDockerConfig()
	r := dockerauth.NewResolver(ctx, dockerauth.Sources{
		DockerAuthConfig: d.Env.Vars["DOCKER_AUTH_CONFIG"],
		ManagerConfig:    config, ManagerConfigPath: path,
		JobCredentials: creds,
		Helpers:        dockerauth.Helpers{Timeout: d.Settings.Registry.HelperTimeout.Duration},
		Fallback:       d.ecrFallback(c, w),
	})
	d.logWarnings(r)
	return r
}

func (d *Driver) ecrFallback(c Clients, w *engine.Worker) dockerauth.RegistryFallback {
	switch d.Settings.Registry.ECR {
	case settings.ECRManager:
		return &dockerauth.TokenCache{Dir: filepath.Join(d.Settings.StateDir, "ecr"), Margin: ecrTokenMargin, Now: d.Now, API: c.ECR}
	case settings.ECRWorker:
		return dockerauth.WorkerHelper{Run: w.Exec}
	}
	return nil
}

// managerDockerConfig reads the manager's Docker config.json; an unreadable one is
// a warning and no source.
func (d *Driver) managerDockerConfig() (string, string) {
	path, config, err := dockerauth.ManagerConfig(d.Settings.Registry.DockerConfig)
	if err != nil {
		d.Log.Warn("Not using the manager's Docker config: " + err.Error())
	}
	return path, config
}

// logWarnings reports skipped sources once each.
func (d *Driver) logWarnings(r *dockerauth.Resolver) {
	for _, w := range r.Warnings {
		d.Log.Warn(w)
	}
	r.Warnings = nil
}
