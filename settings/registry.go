package settings

import (
	"path"
	"slices"
	"time"

	"github.com/distribution/reference"
)

// Registry says where pull credentials come from beyond the docker executor's sources,
// and how image names are rewritten before pulling.
type Registry struct {
	// ECR is "worker" (the worker's docker-credential-ecr-login and instance profile),
	// "manager" (ecr:GetAuthorizationToken with the manager's identity) or "off".
	ECR string `toml:"ecr"`
	// DockerConfig is the manager's Docker config.json; empty means
	// $DOCKER_CONFIG/config.json, else ~/.docker/config.json of the runner's user.
	DockerConfig  string    `toml:"docker_config"`
	HelperTimeout Duration  `toml:"helper_timeout"`
	Rewrites      []Rewrite `toml:"rewrites"`
	// InJobECR gives the build container the worker's ECR credential helper and a
	// Docker config using it, for `docker build`/`push` against the worker's socket.
	InJobECR bool `toml:"in_job_ecr"`
}

// Rewrite is one ordered image-prefix rule.
type Rewrite struct {
	Prefix      string `toml:"prefix"`
	Replacement string `toml:"replacement"`
}

// ECR modes.
const (
	ECRWorker  = "worker"
	ECRManager = "manager"
	ECROff     = "off"
)

func defaultRegistry() Registry {
	return Registry{ECR: ECRWorker, HelperTimeout: Duration{10 * time.Second}}
}

func (r Registry) validate(add func(error)) {
	if !slices.Contains([]string{ECRWorker, ECRManager, ECROff}, r.ECR) {
		add(problem("registry.ecr", "must be %q, %q or %q, got %q", ECRWorker, ECRManager, ECROff, r.ECR))
	}
	if r.DockerConfig != "" && !path.IsAbs(r.DockerConfig) {
		add(problem("registry.docker_config", "must be an absolute path, got %q", r.DockerConfig))
	}
	positive(add, "registry.helper_timeout", r.HelperTimeout.Duration)
	for n, rw := range r.Rewrites {
		if rw.Prefix == "" || rw.Replacement == "" {
			add(problem("registry.rewrites", "entry %d: prefix and replacement must both be set", n))
			continue
		}
		if _, err := reference.ParseNormalizedNamed(rw.Replacement + "image:tag"); err != nil {
			add(problem("registry.rewrites", "entry %d: replacement %q does not make image references", n, rw.Replacement))
		}
	}
}
