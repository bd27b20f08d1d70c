package stages

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/settings"
	"github.com/ec2-executor/ec2-executor/workers"
)

// pullPolicies is the job's list (else the operator's default) bounded by the
// operator's allowed list, as the docker executor computes it. An empty
// intersection is the job's configuration error.
func pullPolicies(job []string, d settings.Docker) ([]string, error) {
	want := job
	if len(want) == 0 {
		want = d.PullPolicy
	}
	allowed := d.AllowedPullPolicies
	if len(allowed) == 0 {
		allowed = d.PullPolicy
	}
	var out []string
	for _, p := range want {
		if slices.Contains(allowed, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, jobError(fmt.Errorf("pull_policy %s is not allowed: the runner allows %s (docker.allowed_pull_policies)",
			strings.Join(want, ", "), strings.Join(allowed, ", ")))
	}
	return out, nil
}

// checkAllowed refuses an image that matches none of the operator's patterns, before
// anything is pulled. No patterns allows every image.
func checkAllowed(image string, patterns []string, what, setting string) error {
	if len(patterns) == 0 {
		return nil
	}
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, image); ok {
			return nil
		}
	}
	return jobError(fmt.Errorf("%s %s is not allowed: it matches none of %s (%s)", what, image, strings.Join(patterns, ", "), setting))
}

var semver = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)`)

// helperImage fills the helper image's placeholders the way the docker executor tags
// its helper: ${CI_RUNNER_VERSION} is v<major.minor.patch> ("latest" for a
// development runner) and ${CI_RUNNER_ARCH} the worker's architecture in the helper
// image's names (x86_64, arm64, arm).
func helperImage(template, runnerVersion, arch string) (string, error) {
	version := "latest"
	if m := semver.FindStringSubmatch(runnerVersion); m != nil {
		version = "v" + m[1]
	}
	switch arch {
	case "aarch64":
		arch = "arm64"
	case "armv7l", "armv6l":
		arch = "arm"
	}
	var unknown []string
	out := os.Expand(template, func(name string) string {
		switch name {
		case "CI_RUNNER_VERSION":
			return version
		case "CI_RUNNER_ARCH":
			return arch
		}
		unknown = append(unknown, name)
		return ""
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("job.helper_image %q: unknown placeholder(s) %s (use ${CI_RUNNER_VERSION} and ${CI_RUNNER_ARCH})", template, strings.Join(unknown, ", "))
	}
	return out, nil
}

// images is how the job puts images on its worker (workers.Images), with creds.
func (d *Driver) images(creds *dockerauth.Resolver) workers.Images {
	return workers.Images{Rewrites: d.Settings.Registry.Rewrites, Creds: creds, Log: d.Log}
}
