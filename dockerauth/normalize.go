package dockerauth

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// ImagePath returns the image's registry host and repository path without tag or
// digest: "nginx:1" -> "docker.io/library/nginx".
func ImagePath(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", image, err)
	}
	return strings.ToLower(reference.Domain(named)) + "/" + reference.Path(named), nil
}

// NormalizeKey turns a credential key as people write it ("https://index.docker.io/v1/",
// "Registry.example.com:5000/") into the form ImagePath produces.
func NormalizeKey(key string) string {
	k := strings.TrimSpace(key)
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	k = strings.TrimSuffix(k, "/")
	k = strings.TrimSuffix(k, "/v1")
	k = strings.TrimSuffix(k, "/v2")
	host, rest, _ := strings.Cut(k, "/")
	host = strings.ToLower(host)
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = "docker.io"
	}
	if rest == "" {
		return host
	}
	return host + "/" + rest
}

// candidates lists the keys that can match an image path, most specific first:
// "host/a/b" -> "host/a/b", "host/a", "host".
func candidates(path string) []string {
	var out []string
	for p := path; p != ""; {
		out = append(out, p)
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return out
}
