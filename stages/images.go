package stages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
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

// ensureImage makes image available on the worker following the pull policies in
// order: never only inspects, if-not-present pulls when missing, always pulls. A
// failed policy falls through to the next one, as in the docker executor. The
// operator's rewrites apply first. It returns the name the image has on the worker.
func (d *Driver) ensureImage(ctx context.Context, w *engine.Worker, creds *dockerauth.Resolver, image, platform string, policies []string) (string, error) {
	image, err := d.rewrite(image)
	if err != nil {
		return "", err
	}
	// Nothing but a successful pull (which returns) changes whether the image is
	// there, so one inspect serves every policy.
	present := sync.OnceValue(func() bool {
		ok, err := w.Present(ctx, image)
		return err == nil && ok
	})
	var errs []error
	for _, p := range policies {
		if p != settings.PullAlways {
			if present() {
				d.Log.Info("Using locally found image "+image+" (pull policy "+p+")", "image", image)
				return image, nil
			}
			if p == settings.PullNever {
				errs = append(errs, fmt.Errorf("image %s is not on the worker and the pull policy is never", image))
				continue
			}
		}
		err := d.pull(ctx, w, creds, image, platform)
		if err == nil {
			return image, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func (d *Driver) rewrite(image string) (string, error) {
	rules := make([]dockerauth.Rewrite, 0, len(d.Settings.Registry.Rewrites))
	for _, r := range d.Settings.Registry.Rewrites {
		rules = append(rules, dockerauth.Rewrite(r))
	}
	out, changed, err := dockerauth.ApplyRewrites(image, rules)
	if changed {
		d.Log.Info("Rewrote image "+image+" to "+out+" (registry.rewrites)", "image", out)
	}
	return out, err
}

// pull pulls image with the credential the resolver picks, saying in the job log
// which source was used (never the secret).
func (d *Driver) pull(ctx context.Context, w *engine.Worker, creds *dockerauth.Resolver, image, platform string) error {
	cred, ok, err := creds.For(ctx, image)
	d.logWarnings(creds)
	if err != nil {
		return fmt.Errorf("finding credentials for %s: %w", image, err)
	}
	auth, source := "", "no credentials"
	if ok {
		if auth, err = cred.Encode(); err != nil {
			return err
		}
		source = "credentials from " + cred.Source + " for " + cred.Key
	}
	d.Log.Info("Pulling image "+image+" with "+source, "image", image)
	start := d.Now()
	if err := w.Pull(ctx, image, auth, platform); err != nil {
		return err
	}
	d.Log.Info("Pulled image "+image, "after", d.Now().Sub(start).Round(time.Millisecond).String())
	return nil
}
