package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ECRLoginModule is the real amazon-ecr-credential-helper a worker's cloud-init
// installs (Debian's and Amazon Linux's package build the same module), built with
// go install from the Go module proxy.
const ECRLoginModule = "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login@v0.13.0"

// buildECRLogin puts docker-credential-ecr-login in the stack's tools directory.
func (s *Stack) buildECRLogin(ctx context.Context) error {
	bin := filepath.Join(s.Dir, "tools")
	cmd := exec.CommandContext(ctx, "go", "install", ECRLoginModule)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s: %v: %s", ECRLoginModule, err, tail(out, 5))
	}
	s.ecrLogin = filepath.Join(bin, "docker-credential-ecr-login")
	return nil
}

// workerSessionEnv is what the worker's SSH sessions get, as an instance's
// processes would from its environment: the stack's static credentials stand in for
// the instance profile, and the SDK's standard endpoint variable sends ECR calls to
// moto (the helper's token cache is off, so each pull asks as a fresh worker would).
func workerSessionEnv(dir string) string {
	vars := append(Env(), "PATH="+dir+"/bin:/usr/local/bin:/usr/bin:/bin", "AWS_ENDPOINT_URL_ECR="+MotoURL,
		"AWS_ECR_DISABLE_CACHE=true", "HOME="+dir+"/home")
	return strings.Join(vars, " ")
}
