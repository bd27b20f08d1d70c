package dockerauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Source names, as shown in the job log.
const (
	SourceDockerAuthConfig = "DOCKER_AUTH_CONFIG"
	SourceJobCredentials   = "job payload credentials"
)

// Sources are the credential sources in the docker executor's precedence order.
type Sources struct {
	// DockerAuthConfig is the job's DOCKER_AUTH_CONFIG variable (already job-over-runner).
	DockerAuthConfig string
	// JobCredentials are the payload's registry credentials[] (GitLab registry,
	// dependency proxy).
	JobCredentials []Credential
}

// Resolver finds the credential for an image.
type Resolver struct {
	entries  []Credential // precedence order, first wins
	Warnings []string     // problems with a source that was skipped (never secrets)
}

// NewResolver parses every source once. A malformed source is skipped with a warning
// naming it, and the next source is used, as the docker executor does.
func NewResolver(s Sources) *Resolver {
	r := &Resolver{}
	if strings.TrimSpace(s.DockerAuthConfig) != "" {
		creds, err := parseDockerConfig(s.DockerAuthConfig, SourceDockerAuthConfig)
		if err != nil {
			r.Warnings = append(r.Warnings, err.Error())
		}
		r.entries = append(r.entries, creds...)
	}
	for _, c := range s.JobCredentials {
		c.Key = NormalizeKey(c.Key)
		c.Source = SourceJobCredentials
		r.entries = append(r.entries, c)
	}
	return r
}

// For returns the credential for image, walking from the most specific path to the
// registry host; the first source with an entry for a path wins.
func (r *Resolver) For(image string) (Credential, bool, error) {
	path, err := ImagePath(image)
	if err != nil {
		return Credential{}, false, err
	}
	for _, key := range candidates(path) {
		for _, c := range r.entries {
			if c.Key == key {
				return c, true, nil
			}
		}
	}
	return Credential{}, false, nil
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// parseDockerConfig reads the auths of a Docker config.json document. Errors name the
// source and the registry key, never the secret.
func parseDockerConfig(doc, source string) ([]Credential, error) {
	var cfg dockerConfig
	if err := json.Unmarshal([]byte(doc), &cfg); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%s); skipping it", source, jsonProblem(err))
	}
	var out []Credential
	var problems []string
	for key, a := range cfg.Auths {
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			u, p, err := decodeAuth(a.Auth)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: auths[%q].auth %s; skipping that entry", source, key, err))
				continue
			}
			user, pass = u, p
		}
		out = append(out, Credential{Key: NormalizeKey(key), Username: user, Password: pass, Source: source})
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

func decodeAuth(s string) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("is not base64 of user:password")
	}
	return user, pass, nil
}

// jsonProblem describes a JSON error without quoting the document (it holds secrets).
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	default:
		return "unreadable"
	}
}
