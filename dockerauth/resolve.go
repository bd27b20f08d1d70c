package dockerauth

import (
	"context"
	"fmt"
	"strings"
)

// Source names, as shown in the job log.
const (
	SourceDockerAuthConfig = "DOCKER_AUTH_CONFIG"
	SourceJobCredentials   = "job payload credentials"
)

// HelperAPI is the seam at the docker-credential-* executables (Helpers runs them).
type HelperAPI interface {
	Get(ctx context.Context, helper, serverURL string) (user, secret string, err error)
	List(ctx context.Context, helper string) ([]string, error)
}

// RegistryFallback supplies a credential for a registry no source has one for
// (ECR: a token from the manager's or the worker's AWS identity).
type RegistryFallback interface {
	For(ctx context.Context, host string) (Credential, bool, error)
}

// Sources are the credential sources in the docker executor's precedence order,
// then ec2-executor's fallback.
type Sources struct {
	// DockerAuthConfig is the job's DOCKER_AUTH_CONFIG variable (already job-over-runner).
	DockerAuthConfig string
	// ManagerConfig is the manager's Docker config.json ("" when it has none), named
	// ManagerConfigPath in messages.
	ManagerConfig     string
	ManagerConfigPath string
	// JobCredentials are the payload's registry credentials[] (GitLab registry,
	// dependency proxy).
	JobCredentials []Credential
	// Helpers runs credsStore and credHelpers programs; nil ignores them.
	Helpers HelperAPI
	// Fallback is asked when no source matched.
	Fallback RegistryFallback
}

// Resolver finds the credential for an image.
type Resolver struct {
	entries  []entry // precedence order, first wins
	helpers  HelperAPI
	fallback RegistryFallback
	// Warnings are problems with sources that were skipped (never secrets).
	Warnings []string
}

// NewResolver parses every source once. A malformed source is skipped with a warning
// naming it, and the next source is used, as the docker executor does. Unlike the
// docker executor, credHelpers and credsStore work in DOCKER_AUTH_CONFIG too.
func NewResolver(ctx context.Context, s Sources) *Resolver {
	r := &Resolver{helpers: s.Helpers, fallback: s.Fallback}
	r.addConfig(ctx, s.DockerAuthConfig, SourceDockerAuthConfig)
	r.addConfig(ctx, s.ManagerConfig, s.ManagerConfigPath)
	for _, c := range s.JobCredentials {
		c.Key = NormalizeKey(c.Key)
		c.Source = SourceJobCredentials
		r.entries = append(r.entries, entry{key: c.Key, source: c.Source, cred: c})
	}
	return r
}

func (r *Resolver) addConfig(ctx context.Context, doc, source string) {
	if strings.TrimSpace(doc) == "" {
		return
	}
	entries, warnings, err := parseDockerConfig(ctx, doc, source, r.helpers)
	if err != nil {
		warnings = append(warnings, err.Error())
	}
	r.Warnings = append(r.Warnings, warnings...)
	r.entries = append(r.entries, entries...)
}

// For returns the credential for image, walking from the most specific path to the
// registry host; the first source with an entry for a path wins. A helper that fails
// is a warning, and the search goes on.
func (r *Resolver) For(ctx context.Context, image string) (Credential, bool, error) {
	path, err := ImagePath(image)
	if err != nil {
		return Credential{}, false, err
	}
	for _, key := range candidates(path) {
		for _, e := range r.entries {
			if e.key != key {
				continue
			}
			if e.helper == "" {
				return e.cred, true, nil
			}
			user, secret, err := r.helpers.Get(ctx, e.helper, e.key)
			if err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s for %s: %v", e.source, e.key, err))
				continue
			}
			return Credential{Key: e.key, Username: user, Password: secret, Source: e.source}, true, nil
		}
	}
	if r.fallback != nil {
		host, _, _ := strings.Cut(path, "/")
		return r.fallback.For(ctx, host)
	}
	return Credential{}, false, nil
}
