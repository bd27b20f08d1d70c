package settings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/docker/go-units"
)

// Docker holds what [runners.docker] holds for the docker executor: how the job's
// containers are pulled, allowed and shaped on the worker.
type Docker struct {
	// PullPolicy is used when the job names none; AllowedPullPolicies bounds the
	// job's choice (default: PullPolicy).
	PullPolicy          []string `toml:"pull_policy"`
	AllowedPullPolicies []string `toml:"allowed_pull_policies"`
	// AllowedImages and AllowedServices are doublestar patterns; empty allows all.
	AllowedImages   []string `toml:"allowed_images"`
	AllowedServices []string `toml:"allowed_services"`
	// User overrides the job image's user (executor_opts.docker.user).
	User                       string            `toml:"user"`
	DisableEntrypointOverwrite bool              `toml:"disable_entrypoint_overwrite"`
	Privileged                 bool              `toml:"privileged"`
	Volumes                    []string          `toml:"volumes"`
	CapAdd                     []string          `toml:"cap_add"`
	CapDrop                    []string          `toml:"cap_drop"`
	ShmSize                    string            `toml:"shm_size"`
	Memory                     string            `toml:"memory"`
	CPUs                       string            `toml:"cpus"`
	DNS                        []string          `toml:"dns"`
	DNSSearch                  []string          `toml:"dns_search"`
	ExtraHosts                 []string          `toml:"extra_hosts"`
	Sysctls                    map[string]string `toml:"sysctls"`
	// ServicesLimit caps the job's services; -1 allows any number.
	ServicesLimit          int      `toml:"services_limit"`
	WaitForServicesTimeout Duration `toml:"wait_for_services_timeout"`
	// ServicesPrivileged overrides Privileged for service containers (unset: the
	// same as the build container's, as in the docker executor).
	ServicesPrivileged *bool `toml:"services_privileged"`
	// ServiceMemory and ServiceCPUs limit each service container.
	ServiceMemory string `toml:"service_memory"`
	ServiceCPUs   string `toml:"service_cpus"`
	// ServicesSecurityOpt and ServicesTmpfs are Docker's --security-opt and --tmpfs
	// for service containers.
	ServicesSecurityOpt []string          `toml:"services_security_opt"`
	ServicesTmpfs       map[string]string `toml:"services_tmpfs"`
}

// ServicePrivileged is whether service containers run privileged.
func (d Docker) ServicePrivileged() bool {
	if d.ServicesPrivileged != nil {
		return *d.ServicesPrivileged
	}
	return d.Privileged
}

// Pull policies.
const (
	PullAlways       = "always"
	PullIfNotPresent = "if-not-present"
	PullNever        = "never"
)

var pullPolicies = []string{PullAlways, PullIfNotPresent, PullNever}

func defaultDocker() Docker {
	return Docker{PullPolicy: []string{PullAlways}, ServicesLimit: -1,
		WaitForServicesTimeout: Duration{30 * time.Second}}
}

func (d Docker) validate(add func(error)) {
	if len(d.PullPolicy) == 0 {
		add(problem("docker.pull_policy", "must not be empty"))
	}
	for field, list := range map[string][]string{"docker.pull_policy": d.PullPolicy, "docker.allowed_pull_policies": d.AllowedPullPolicies} {
		for n, p := range list {
			if !slices.Contains(pullPolicies, p) {
				add(problem(field, "entry %d %q is not always, if-not-present or never", n, p))
			}
		}
	}
	for field, list := range map[string][]string{"docker.allowed_images": d.AllowedImages, "docker.allowed_services": d.AllowedServices} {
		for n, p := range list {
			if !doublestar.ValidatePattern(p) {
				add(problem(field, "entry %d %q is not a valid pattern", n, p))
			}
		}
	}
	for n, v := range d.Volumes {
		if err := checkVolume(v); err != nil {
			add(problem("docker.volumes", "entry %d %q: %v", n, v, err))
		}
	}
	for field, v := range map[string]string{"docker.shm_size": d.ShmSize, "docker.memory": d.Memory, "docker.service_memory": d.ServiceMemory} {
		if _, err := Bytes(v); err != nil {
			add(problem(field, "%q is not a size like \"64m\" or \"2g\"", v))
		}
	}
	for field, v := range map[string]string{"docker.cpus": d.CPUs, "docker.service_cpus": d.ServiceCPUs} {
		if _, err := NanoCPUs(v); err != nil {
			add(problem(field, "%q is not a positive number of CPUs like \"1.5\"", v))
		}
	}
	for target := range d.ServicesTmpfs {
		if !strings.HasPrefix(target, "/") {
			add(problem("docker.services_tmpfs", "%q is not an absolute container path", target))
		}
	}
	for n, h := range d.ExtraHosts {
		if name, ip, ok := strings.Cut(h, ":"); !ok || name == "" || ip == "" {
			add(problem("docker.extra_hosts", "entry %d %q is not host:ip", n, h))
		}
	}
	if d.ServicesLimit < -1 {
		add(problem("docker.services_limit", "must be -1 (no limit) or more, got %d", d.ServicesLimit))
	}
	positive(add, "docker.wait_for_services_timeout", d.WaitForServicesTimeout.Duration)
}

// checkVolume accepts "/container/path" (a per-job volume) or "host:container[:ro|rw]".
func checkVolume(v string) error {
	parts := strings.Split(v, ":")
	switch {
	case len(parts) == 1 && strings.HasPrefix(v, "/"):
		return nil
	case len(parts) < 2 || len(parts) > 3:
		return fmt.Errorf("want /path or host:container[:ro]")
	case !strings.HasPrefix(parts[1], "/"):
		return fmt.Errorf("container path %q must be absolute", parts[1])
	case len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw":
		return fmt.Errorf("mode %q must be ro or rw", parts[2])
	}
	return nil
}

// Bytes parses a Docker-style size ("64m"); empty is 0 (Docker's default).
func Bytes(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return units.RAMInBytes(s)
}

// NanoCPUs parses a CPU count ("1.5"); empty is 0 (no limit).
func NanoCPUs(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("not a positive number")
	}
	return int64(f * 1e9), nil
}
