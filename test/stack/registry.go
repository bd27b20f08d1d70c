package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ECRToken is the password inside moto's ECR authorization token; the registry's
// htpasswd accepts it for user AWS so moto's real token logs in.
const ECRToken = "123456789012-auth-token"

const registryConfig = `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {{DATA}}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {{ADDR}}
  secret: stack-only-not-a-secret
`

const registryAuth = `auth:
  htpasswd:
    realm: stack-registry
    path: {{HTPASSWD}}
`

// registryYAML is a registry config serving the storage in data on addr, with
// htpasswd auth when htpasswd is not empty.
func registryYAML(data, addr, htpasswd string) string {
	cfg := strings.NewReplacer("{{DATA}}", data, "{{ADDR}}", addr).Replace(registryConfig)
	if htpasswd != "" {
		cfg += strings.ReplaceAll(registryAuth, "{{HTPASSWD}}", htpasswd)
	}
	return cfg
}

// startRegistries starts the htpasswd registry and an unauthenticated view of the
// same storage.
func (s *Stack) startRegistries(ctx context.Context) error {
	dir := filepath.Join(s.Dir, "registry")
	htpasswd := filepath.Join(dir, "htpasswd")
	for i, u := range [][2]string{{RegistryUser, RegistryPassword}, {"AWS", ECRToken}} {
		args := []string{"-Bb", htpasswd, u[0], u[1]}
		if i == 0 {
			args = []string{"-Bbc", htpasswd, u[0], u[1]}
		}
		if out, err := exec.Command("htpasswd", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("htpasswd: %w: %s", err, out)
		}
	}
	for _, r := range []struct {
		name, addr string
		auth       bool
	}{{"registry", RegistryAddr, true}, {"registry-open", OpenRegistryAddr, false}} {
		if err := portFree(r.addr); err != nil {
			return err
		}
		auth := ""
		if r.auth {
			auth = htpasswd
		}
		cfg := registryYAML(filepath.Join(dir, "data"), r.addr, auth)
		path := filepath.Join(dir, r.name+".yml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		p, err := s.start(r.name, nil, "docker-registry", "serve", path)
		if err != nil {
			return err
		}
		if err := waitFor(ctx, p, 30*time.Second, r.name+" to answer", httpUp("http://"+r.addr+"/v2/")); err != nil {
			return err
		}
	}
	return nil
}
