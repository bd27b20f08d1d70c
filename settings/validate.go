package settings

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

var (
	unixUser = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`) // and at most 32 long (counted, it would compile large)
	region   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

// Validate returns every problem in the settings, one per line, each naming its field.
func (s Settings) Validate() error {
	var errs []error
	add := func(e error) { errs = append(errs, e) }

	if strings.TrimSpace(s.ManagerID) == "" {
		add(problem("manager_id", "must not be empty"))
	}
	if !path.IsAbs(s.StateDir) {
		add(problem("state_dir", "must be an absolute path, got %q", s.StateDir))
	}
	s.AWS.validate(add)
	s.Instance.validate(add)
	s.Overrides.validate(add)
	s.validateArchOverrides(add)
	s.validatePoolArch(add)
	s.Worker.validate(add)
	s.Reap.validate(add)
	s.SSH.validate(add)
	s.Job.validate(add)
	s.Docker.validate(add)
	s.Registry.validate(add)
	s.Pool.validate(add, s.Instance.Market)
	if s.Pool.MaxBuilds > 1 && (s.Docker.Privileged || s.Docker.ServicePrivileged()) && !s.Pool.ReusePrivileged {
		add(problem("pool.max_builds", "%d reuses workers that ran privileged jobs, which can change a worker for the next job (docs/pool.md): keep 1, or opt in with pool.reuse_privileged = true", s.Pool.MaxBuilds))
	}
	s.validateInJobECR(add)
	return joinSorted(errs)
}

func (a AWS) validate(add func(error)) {
	if !region.MatchString(a.Region) {
		add(problem("aws.region", "%q is not an AWS region name (like us-east-1)", a.Region))
	}
	if a.Endpoint != "" {
		u, err := url.Parse(a.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(problem("aws.endpoint", "%q is not an http(s) URL", a.Endpoint))
		}
	}
}

// TagPrefix is reserved for the driver's own instance tags.
const TagPrefix = "ec2-executor:"

func (r Reap) validate(add func(error)) {
	if r.GracePeriod.Duration < 0 {
		add(problem("reap.grace_period", "must not be negative, got %s", r.GracePeriod.Duration))
	}
	positive(add, "reap.interval", r.Interval.Duration)
	positive(add, "reap.heartbeat_interval", r.HeartbeatInterval.Duration)
	if r.ManagerTimeout.Duration < 2*r.HeartbeatInterval.Duration {
		add(problem("reap.manager_timeout", "%s must be at least twice reap.heartbeat_interval (%s), or a live manager's workers could be reaped between two heartbeats",
			r.ManagerTimeout.Duration, r.HeartbeatInterval.Duration))
	}
}

func (s SSH) validate(add func(error)) {
	if len(s.User) > 32 || !unixUser.MatchString(s.User) || s.User == "root" {
		add(problem("ssh.user", "%q must be a non-root Unix user name (lower case, up to 32 characters)", s.User))
	}
	if s.Port < 1 || s.Port > 65535 {
		add(problem("ssh.port", "must be between 1 and 65535, got %d", s.Port))
	}
	if s.Address != AddressPrivate && s.Address != AddressPublic {
		add(problem("ssh.address", "must be %q or %q, got %q", AddressPrivate, AddressPublic, s.Address))
	}
	positive(add, "ssh.connect_timeout", s.ConnectTimeout.Duration)
	positive(add, "ssh.retry_interval", s.RetryInterval.Duration)
	positive(add, "ssh.run_connect_timeout", s.RunConnectTimeout.Duration)
	positive(add, "ssh.cleanup_connect_timeout", s.CleanupConnectTimeout.Duration)
	positive(add, "ssh.reconnect_first_try", s.ReconnectFirstTry.Duration)
}

func (j Job) validate(add func(error)) {
	if strings.TrimSpace(j.DefaultImage) == "" {
		add(problem("job.default_image", "must not be empty: it runs jobs that name no image"))
	}
	if strings.TrimSpace(j.HelperImage) == "" {
		add(problem("job.helper_image", "must not be empty"))
	}
	for field, dir := range map[string]string{"job.builds_dir": j.BuildsDir, "job.cache_dir": j.CacheDir} {
		if !path.IsAbs(dir) || path.Clean(dir) == "/" {
			add(problem(field, "must be an absolute path other than /, got %q", dir))
		}
	}
}

func positive(add func(error), field string, d time.Duration) {
	if d <= 0 {
		add(problem(field, "must be a positive duration, got %s", d))
	}
}

// validateInJobECR checks what in-job ECR access needs from other sections: the
// helper on the worker, registries for it, and an IMDS hop limit containers can use.
func (s Settings) validateInJobECR(add func(error)) {
	if !s.Registry.InJobECR {
		return
	}
	if s.Instance.MetadataHopLimit < 2 {
		add(problem("registry.in_job_ecr", "needs instance.metadata_hop_limit = 2 or more, so job containers can reach the instance profile's credentials (it is %d)", s.Instance.MetadataHopLimit))
	}
	if !s.Worker.ECRCredentialHelper {
		add(problem("registry.in_job_ecr", "needs worker.ecr_credential_helper = true"))
	}
	if len(s.Worker.ECRRegistries) == 0 && !s.Worker.ECRCredsStore {
		add(problem("registry.in_job_ecr", "needs worker.ecr_registries (or worker.ecr_creds_store) to say which registries the helper serves"))
	}
}
