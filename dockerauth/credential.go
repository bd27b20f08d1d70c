package dockerauth

import (
	"github.com/docker/docker/api/types/registry"
)

// Credential is one registry login. Password is a secret.
type Credential struct {
	// Key is the normalized registry path the credential is for ("127.0.0.1:5000",
	// "docker.io", "registry.example.com/group").
	Key      string
	Username string
	Password string
	// Source says where it came from, for the job log ("DOCKER_AUTH_CONFIG",
	// "job payload credentials").
	Source string
}

// Encode returns the base64url JSON the Docker Engine API takes as X-Registry-Auth.
func (c Credential) Encode() (string, error) {
	return registry.EncodeAuthConfig(registry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: c.Key})
}
