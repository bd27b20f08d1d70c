package workers

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ec2-executor/ec2-executor/dockerauth"
	"github.com/ec2-executor/ec2-executor/engine"
	"github.com/ec2-executor/ec2-executor/settings"
)

// ecrTokenMargin is how long before expiry a cached ECR token is replaced (they live
// 12 hours): long enough for any prepare's pulls.
const ecrTokenMargin = 30 * time.Minute

// Images puts images on a worker: the one way, for a job's containers and for the
// pool's pre-pulls alike. The operator's registry.rewrites apply first, then the
// pull policies in order, with the credential Creds picks for the name that is
// pulled. Log says what it did and which credential source it used (never the
// secret), and passes on the resolver's warnings.
type Images struct {
	Rewrites []settings.Rewrite
	Creds    *dockerauth.Resolver
	Log      hclog.Logger
}

// Ensure makes image available on w following policies in order: never only
// inspects, if-not-present pulls when missing, always pulls. A failed policy falls
// through to the next one, as in the docker executor. It returns the name the
// image has on the worker (after rewrites).
func (im Images) Ensure(ctx context.Context, w *engine.Worker, image, platform string, policies []string) (string, error) {
	image, err := im.rewrite(image)
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
				im.Log.Info("Using locally found image "+image+" (pull policy "+p+")", "image", image)
				return image, nil
			}
			if p == settings.PullNever {
				errs = append(errs, fmt.Errorf("image %s is not on the worker and the pull policy is never", image))
				continue
			}
		}
		err := im.pull(ctx, w, image, platform)
		if err == nil {
			return image, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// Rewrite is the name image is pulled as, after registry.rewrites.
func Rewrite(image string, rules []settings.Rewrite) (string, bool, error) {
	rs := make([]dockerauth.Rewrite, 0, len(rules))
	for _, r := range rules {
		rs = append(rs, dockerauth.Rewrite(r))
	}
	return dockerauth.ApplyRewrites(image, rs)
}

func (im Images) rewrite(image string) (string, error) {
	out, changed, err := Rewrite(image, im.Rewrites)
	if changed {
		im.Log.Info("Rewrote image "+image+" to "+out+" (registry.rewrites)", "image", out)
	}
	return out, err
}

// pull pulls image with the credential the resolver picks.
func (im Images) pull(ctx context.Context, w *engine.Worker, image, platform string) error {
	cred, ok, err := im.Creds.For(ctx, image)
	im.Warnings()
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
	im.Log.Info("Pulling image "+image+" with "+source, "image", image)
	start := time.Now()
	if err := w.Pull(ctx, image, auth, platform); err != nil {
		return err
	}
	im.Log.Info("Pulled image "+image, "after", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Warnings logs the resolver's skipped sources, once each.
func (im Images) Warnings() {
	for _, w := range im.Creds.Warnings {
		im.Log.Warn(w)
	}
	im.Creds.Warnings = nil
}

// ECRFallback is the ECR credential source registry.ecr chooses: tokens from the
// manager's identity (ecr, cached under the state directory and shared by every
// process of the manager), the worker's own helper, or none.
func ECRFallback(s settings.Settings, ecr func(context.Context, string) (dockerauth.ECRAPI, error), w *engine.Worker, now func() time.Time) dockerauth.RegistryFallback {
	switch s.Registry.ECR {
	case settings.ECRManager:
		return &dockerauth.TokenCache{Dir: filepath.Join(s.StateDir, "ecr"), Margin: ecrTokenMargin, Now: now, API: ecr}
	case settings.ECRWorker:
		return dockerauth.WorkerHelper{Run: w.Exec}
	}
	return nil
}

// CheckPrepull reports each pool.prepull_images image the pool could not pull: a
// name that is not a reference after registry.rewrites, or an image in ECR while
// registry.ecr = "off" gives the pool no ECR token for it.
func CheckPrepull(s settings.Settings) error {
	var errs []error
	for _, image := range s.Pool.PrepullImages {
		name, _, err := Rewrite(image, s.Registry.Rewrites)
		var path string
		if err == nil {
			path, err = dockerauth.ImagePath(name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pool.prepull_images: %s: %w", image, err))
			continue
		}
		host, _, _ := strings.Cut(path, "/")
		if _, _, ecr := dockerauth.ECRRegistry(host); ecr && s.Registry.ECR == settings.ECROff {
			errs = append(errs, fmt.Errorf("pool.prepull_images: %s is in ECR and registry.ecr = \"off\" gives the pool no ECR token: "+
				"set registry.ecr to \"worker\" or \"manager\", or drop it from the list", name))
		}
	}
	return errors.Join(errs...)
}
