package stages

import (
	"context"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/workers"
)

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
		Fallback:       workers.ECRFallback(d.Settings, c.ECR, w, d.Now),
	})
	d.images(r).Warnings()
	return r
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
