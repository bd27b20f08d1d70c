package dockerauth

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Rewrite sends images whose full name starts with Prefix elsewhere: "docker.io/" to
// an ECR pull-through cache or a GitLab dependency proxy, for what registry mirrors
// cannot do.
type Rewrite struct {
	Prefix      string
	Replacement string
}

// ApplyRewrites applies the first rule whose prefix matches the image's full name
// ("alpine:3.20" is "docker.io/library/alpine:3.20"). It returns the image unchanged,
// and false, when no rule matches.
func ApplyRewrites(image string, rules []Rewrite) (string, bool, error) {
	if len(rules) == 0 {
		return image, false, nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", false, fmt.Errorf("invalid image reference %q: %w", image, err)
	}
	full := reference.TagNameOnly(named).String()
	for _, r := range rules {
		if strings.HasPrefix(full, r.Prefix) {
			out := r.Replacement + strings.TrimPrefix(full, r.Prefix)
			if _, err := reference.ParseNormalizedNamed(out); err != nil {
				return "", false, fmt.Errorf("rewriting %s with %s => %s gives %q, not an image reference", image, r.Prefix, r.Replacement, out)
			}
			return out, true, nil
		}
	}
	return image, false, nil
}
