package cloudinit

// Options is what the operator's settings add to every worker.
type Options struct {
	// ECRCredentialHelper installs amazon-ecr-credential-helper when it is missing.
	ECRCredentialHelper bool
	// ECRRegistries get "ecr-login" credHelpers in root's and the SSH user's Docker
	// config.json; ECRCredsStore makes "ecr-login" the credsStore for every registry.
	ECRRegistries []string
	ECRCredsStore bool
	// InJobECR prepares JobDockerDir: a Docker config using the ECR helper and a copy
	// of the helper, which the driver mounts into build containers.
	InJobECR bool
	// RegistryMirrors, InsecureRegistries and DaemonOptions are merged into the
	// AMI's /etc/docker/daemon.json.
	RegistryMirrors    []string
	InsecureRegistries []string
	DaemonOptions      map[string]any
	// Packages, Runcmd and WriteFiles are added to the document; ExtraCloudConfig is a
	// whole #cloud-config part merged into it (lists appended, other keys added).
	Packages         []string
	Runcmd           []string
	WriteFiles       []File
	ExtraCloudConfig string
}

// File is one file the operator wants on every worker.
type File struct {
	Path        string
	Content     string
	Owner       string
	Permissions string
}

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
