package settings

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

var (
	amiID        = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	subnetID     = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	sgID         = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)
	instanceType = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	unixUser     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	region       = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	profileName  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
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
	s.SSH.validate(add)
	s.Job.validate(add)
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

func (i Instance) validate(add func(error)) {
	switch {
	case i.AMI == "":
		add(problem("instance.ami", "must not be empty"))
	case !amiID.MatchString(i.AMI):
		add(problem("instance.ami", "%q is not an AMI id (ami-0123456789abcdef0)", i.AMI))
	}
	if !instanceType.MatchString(i.Type) {
		add(problem("instance.type", "%q is not an instance type (like t3.medium)", i.Type))
	}
	switch {
	case i.SubnetID == "":
		add(problem("instance.subnet_id", "must not be empty: workers are launched into a subnet you choose"))
	case !subnetID.MatchString(i.SubnetID):
		add(problem("instance.subnet_id", "%q is not a subnet id (subnet-0123456789abcdef0)", i.SubnetID))
	}
	for n, id := range i.SecurityGroupIDs {
		if !sgID.MatchString(id) {
			add(problem("instance.security_group_ids", "entry %d %q is not a security group id (sg-0123456789abcdef0)", n, id))
		}
	}
	if p := i.IAMInstanceProfile; p != "" && !strings.HasPrefix(p, "arn:") && !profileName.MatchString(p) {
		add(problem("instance.iam_instance_profile", "%q is neither an instance profile name nor an ARN", p))
	}
	if i.MetadataHopLimit < 1 || i.MetadataHopLimit > 64 {
		add(problem("instance.metadata_hop_limit", "must be between 1 and 64, got %d", i.MetadataHopLimit))
	}
	for k, v := range i.Tags {
		if k == "" || len(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") || strings.HasPrefix(k, TagPrefix) {
			add(problem("instance.tags", "key %q must be 1-128 characters and not start with aws: or %s", k, TagPrefix))
		}
		if len(v) > 256 {
			add(problem("instance.tags", "value of %q is longer than 256 characters", k))
		}
	}
	positive(add, "instance.launch_timeout", i.LaunchTimeout.Duration)
	positive(add, "instance.poll_interval", i.PollInterval.Duration)
}

// TagPrefix is reserved for the driver's own instance tags.
const TagPrefix = "ec2-executor:"

func (s SSH) validate(add func(error)) {
	if !unixUser.MatchString(s.User) || s.User == "root" {
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
