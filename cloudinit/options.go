package cloudinit

import "github.com/ec2-executor/ec2-executor/settings"

// Options is what the operator's settings add to every worker.
type Options struct {
	// Worker is the operator's [worker] section as written: the ECR helper and
	// registries, daemon.json (registry mirrors, insecure registries, daemon options,
	// merged into the AMI's), and packages, runcmd, write_files and an extra
	// #cloud-config part (lists appended, other keys added). A new worker setting is
	// a field there and its use here, nothing in between.
	settings.Worker
	// InJobECR prepares JobDockerDir: a Docker config using the ECR helper and a copy
	// of the helper, which the driver mounts into build containers.
	InJobECR bool
}

// File is one file the operator wants on every worker.
type File = settings.WriteFile

// daemonJSON is ec2-executor's fragment of /etc/docker/daemon.json, or nil.
func (o Options) daemonJSON() map[string]any {
	d := map[string]any{}
	for k, v := range o.DaemonOptions {
		d[k] = v
	}
	if len(o.RegistryMirrors) > 0 {
		d["registry-mirrors"] = o.RegistryMirrors
	}
	if len(o.InsecureRegistries) > 0 {
		d["insecure-registries"] = o.InsecureRegistries
	}
	if len(d) == 0 {
		return nil
	}
	return d
}

// clientConfig is ec2-executor's fragment of the Docker client config.json, or nil.
func (o Options) clientConfig() map[string]any {
	c := map[string]any{}
	if o.ECRCredsStore {
		c["credsStore"] = "ecr-login"
	}
	if len(o.ECRRegistries) > 0 {
		helpers := map[string]string{}
		for _, r := range o.ECRRegistries {
			helpers[r] = "ecr-login"
		}
		c["credHelpers"] = helpers
	}
	if len(c) == 0 {
		return nil
	}
	return c
}
