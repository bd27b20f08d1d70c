package settings

import (
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Worker is what cloud-init sets up on each worker besides the SSH keys.
type Worker struct {
	// ECRCredentialHelper installs amazon-ecr-credential-helper when the AMI lacks it.
	ECRCredentialHelper bool `toml:"ecr_credential_helper"`
	// ECRRegistries get credHelpers entries ("ecr-login") in the Docker config.json of
	// the SSH user and root; ECRCredsStore sends every registry through the helper.
	ECRRegistries []string `toml:"ecr_registries"`
	ECRCredsStore bool     `toml:"ecr_creds_store"`
	// RegistryMirrors, InsecureRegistries and DaemonOptions are merged into the AMI's
	// /etc/docker/daemon.json; Docker restarts only if the file changed.
	RegistryMirrors    []string       `toml:"registry_mirrors"`
	InsecureRegistries []string       `toml:"insecure_registries"`
	DaemonOptions      map[string]any `toml:"daemon_options"`
	// Packages, Runcmd, WriteFiles and ExtraCloudConfig are the operator's additions.
	Packages         []string    `toml:"packages"`
	Runcmd           []string    `toml:"runcmd"`
	WriteFiles       []WriteFile `toml:"write_files"`
	ExtraCloudConfig string      `toml:"extra_cloud_config"`
}

// WriteFile is one file cloud-init writes on the worker.
type WriteFile struct {
	Path        string `toml:"path"`
	Content     string `toml:"content"`
	Permissions string `toml:"permissions"`
	Owner       string `toml:"owner"`
}

var (
	ecrRegistry = regexp.MustCompile(`^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)
	permissions = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	packageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._:=-]*$`)
	owner       = regexp.MustCompile(`^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$`)
	// managedDaemonKeys have their own settings, or would cut the driver off from Docker.
	managedDaemonKeys = []string{"registry-mirrors", "insecure-registries", "hosts"}
)

func (w Worker) validate(add func(error)) {
	for n, r := range w.ECRRegistries {
		if !ecrRegistry.MatchString(r) {
			add(problem("worker.ecr_registries", "entry %d %q is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com)", n, r))
		}
	}
	for n, m := range w.RegistryMirrors {
		if u, err := url.Parse(m); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(problem("worker.registry_mirrors", "entry %d %q is not an http(s) URL", n, m))
		}
	}
	for n, r := range w.InsecureRegistries {
		if _, _, err := net.ParseCIDR(r); err != nil && !validHostPort(r) {
			add(problem("worker.insecure_registries", "entry %d %q is neither host[:port] nor a CIDR", n, r))
		}
	}
	for _, k := range managedDaemonKeys {
		if _, ok := w.DaemonOptions[k]; ok {
			add(problem("worker.daemon_options", "%q is managed by ec2-executor (use worker.registry_mirrors or worker.insecure_registries; hosts cannot change)", k))
		}
	}
	checkDaemonOptions(w.DaemonOptions, add)
	for n, p := range w.Packages {
		if !packageName.MatchString(p) {
			add(problem("worker.packages", "entry %d %q is not a package name", n, p))
		}
	}
	for n, f := range w.WriteFiles {
		f.validate(add, n)
	}
}

// ownDirs are the worker directories ec2-executor's cloud-config writes; an
// operator's file there would replace one of its scripts or settings.
var ownDirs = []string{"/etc/ec2-executor", "/usr/local/libexec/ec2-executor"}

func (f WriteFile) validate(add func(error), n int) {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
		add(problem("worker.write_files", "entry %d: path %q must be a clean absolute path", n, f.Path))
	}
	for _, own := range ownDirs {
		if f.Path == own || strings.HasPrefix(f.Path, own+"/") {
			add(problem("worker.write_files", "entry %d: path %q is under %s, which is ec2-executor's own on the worker", n, f.Path, own))
		}
	}
	if f.Permissions != "" && !permissions.MatchString(f.Permissions) {
		add(problem("worker.write_files", "entry %d: permissions %q must be octal like \"0644\"", n, f.Permissions))
	}
	if f.Owner != "" && !owner.MatchString(f.Owner) {
		add(problem("worker.write_files", "entry %d: owner %q must be user or user:group", n, f.Owner))
	}
}

func validHostPort(s string) bool {
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	return host != "" && !strings.ContainsAny(host, "/ ") && !slices.Contains([]string{"http", "https"}, host)
}
