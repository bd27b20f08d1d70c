package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
)

// Fixed loopback endpoints (test-stack.md). One stack runs at a time.
const (
	MotoAddr         = "127.0.0.1:5005"
	RegistryAddr     = "127.0.0.1:5000" // htpasswd auth
	OpenRegistryAddr = "127.0.0.1:5002" // the same storage without auth
	NSMirrorAddr     = "127.0.0.1:5001" // pull-through mirror, only inside a worker's network namespace
	Region           = "us-east-1"
	// RegistryUser and RegistryPassword log in to RegistryAddr; the ECR token user is
	// AWS with moto's token.
	RegistryUser     = "ciuser"
	RegistryPassword = "cipass-stack-only"
	// AMI is Amazon Linux 2023's id in moto's catalogue (moto does not validate AMIs by default).
	AMI = "ami-0ed094fb1304fd857"
)

// Images the stack builds locally and pushes to RegistryAddr.
var (
	JobImage = RegistryAddr + "/ci/job:1"
	// HelperImage carries the real gitlab-runner-helper 17.5.0 (RealHelperBinary),
	// bash and git, as GitLab's helper image does.
	HelperImage = RegistryAddr + "/ci/helper:1"
	// ServiceImage answers HTTP on its exposed port 8080; LocalServiceImage is the
	// same image under a Docker Hub-style name, present only in the shared dockerd.
	ServiceImage = RegistryAddr + "/ci/service:1"
	// PublishedImage has its own ENTRYPOINT (it prints "published entrypoint ran as
	// UID" and exports FROM_ENTRYPOINT=yes) and runs as user 1000.
	PublishedImage    = RegistryAddr + "/ci/published:1"
	LocalServiceImage = "ci-svc/web:1"
	// MirrorImage is a Docker Hub name (docker.io/library/ci-mirror-job:1). Only a
	// worker whose daemon.json points at the stack's mirror can pull it: its dockerd
	// has no way out of its network namespace.
	MirrorImage = "ci-mirror-job:1"
	// ECRRepository is the repository seeded in moto's ECR; ECRImage names the job
	// image there. Only a worker whose daemon.json lists ECRHost as an insecure
	// registry can pull it (the stack points the name at its registry for that
	// worker's dockerd alone).
	ECRRepository  = "ci/job-image"
	ECRHost        = "123456789012.dkr.ecr." + Region + ".amazonaws.com"
	ECRImage       = ECRHost + "/" + ECRRepository + ":1"
	mirrorUpstream = RegistryAddr + "/library/ci-mirror-job:1"
)

// RealHelperBinary is the static gitlab-runner-helper that
// ../shared/tools/gitlab-runner/build.sh builds (`make gitlab-runner`).
func RealHelperBinary() string {
	if p := os.Getenv("EC2X_GITLAB_RUNNER_HELPER"); p != "" {
		return p
	}
	return "/usr/local/bin/gitlab-runner-helper"
}

// HelperImageTemplate is the helper image as operators configure it, with the
// runner version and worker architecture placeholders; VersionedHelperImage is what
// it becomes for the runner simulator's 17.5.0 on this machine.
const HelperImageTemplate = RegistryAddr + "/ci/helper:${CI_RUNNER_ARCH}-${CI_RUNNER_VERSION}"

// VersionedHelperImage is HelperImageTemplate filled in for this machine.
func VersionedHelperImage() string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "arm64", "arm": "arm"}[runtime.GOARCH]
	return RegistryAddr + "/ci/helper:" + arch + "-v17.5.0"
}

// Stack is a running local stack.
type Stack struct {
	Dir string
	// Seed is what the stack created in moto.
	Seed Seed
	// SettingsFile is the tests' driver settings file: jobs bring their own registry
	// login. ReadySettingsFile (what `stack up` prints) adds the manager's Docker
	// config with a login for the stack's registry, so any job can pull its images.
	SettingsFile, ReadySettingsFile string
	// Boot is the instance boot simulator.
	Boot *Booter
	// Proxy is the EC2 endpoint drivers get by default: moto behind the stack's proxy,
	// which honours RunInstances client tokens as EC2 does (moto ignores them).
	Proxy *Proxy
	// JobsAPI is the stand-in of GitLab's jobs API that jobs upload their artifacts
	// to (the real runner's and the runner simulator's alike); job containers reach
	// it through JobsAPIMount.
	JobsAPI *gitlabapi.Server
	// IMDS is the played workers' instance metadata service (spot notices).
	IMDS *IMDS
	// Privileged says the shared dockerd runs `--privileged` containers (the stack's
	// runtime, cmd/privrunc): a dockerd the stack found running may not.
	Privileged bool

	mu       sync.Mutex
	privrunc string // the runtime's path
	// dockerImages guards the push of the Docker-in-Docker images (made at first use).
	dockerImages       sync.Mutex
	dockerImagesPushed bool
	procs              []*proc
	ecrLogin           string // the real docker-credential-ecr-login every worker has
	ec2                *ec2.Client
	stopBoot           context.CancelFunc
	bootDone           chan struct{}
	apt                *aptProxy // the really booting workers' package proxy, made at first use
	routes             []net.Listener
}

// aptProxy is the stack's package proxy, its .deb files kept beside the root
// filesystem between runs.
func (s *Stack) aptProxy() *aptProxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apt == nil {
		s.apt = newAPTProxy(filepath.Join(RealRootCache, "debs"), realRootHosts())
	}
	return s.apt
}

// Env is what a driver process needs to reach moto safely: static test credentials and
// no instance-metadata lookups.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
}

// Up starts every component, seeds moto, pushes the test images and starts the boot
// simulator. On error it stops whatever it started.
func Up(ctx context.Context, dir string) (*Stack, error) {
	s := &Stack{Dir: dir}
	// sshd reads each worker's authorized_keys as the worker's user: the tree must be
	// traversable (MkdirTemp makes 0700 directories).
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sub := range []string{"logs", "pids", "state", "boot", "registry/data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"packages", func(context.Context) error {
			reapStale()
			removeStaleNamespaces()
			removeStaleRealBoots()
			unmountStale()
			return EnsurePackages()
		}},
		{"dockerd", s.ensureDockerd},
		{"moto", s.startMoto},
		{"ec2 proxy", func(context.Context) error { s.Proxy = NewProxy(); return nil }},
		{"registries", s.startRegistries},
		{"seed", s.seed},
		{"images", s.pushImages},
		{"ecr helper", s.buildECRLogin},
		{"jobs api", s.startJobsAPI},
		{"settings", s.writeSettings},
		{"boot simulator", s.startBoot},
		{"instance metadata", s.startIMDS},
	}
	for _, step := range steps {
		t0 := time.Now()
		if err := step.fn(ctx); err != nil {
			s.Down()
			return nil, fmt.Errorf("stack %s: %w", step.name, err)
		}
		logf("stack: %s ready in %s", step.name, time.Since(t0).Round(time.Millisecond))
	}
	return s, nil
}

// Down stops the boot simulator (and every sshd it started), then every process the
// stack started, by PID, and removes the local users it created.
func (s *Stack) Down() {
	if s.IMDS != nil {
		s.IMDS.stop()
	}
	if s.stopBoot != nil {
		s.stopBoot()
		<-s.bootDone
	}
	if err := wipeLeftovers(context.Background()); err != nil {
		logf("stack: %v", err)
	}
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop(15 * time.Second) }(procs[i])
	}
	wg.Wait()
	os.RemoveAll(filepath.Join(s.Dir, "pids"))
	_ = os.Remove(registryFile) // everything it lists is stopped
	if s.Proxy != nil {
		s.Proxy.Close()
	}
	if s.JobsAPI != nil {
		s.JobsAPI.Close()
	}
	for _, l := range s.routes {
		_ = l.Close()
	}
}

// Endpoint is the EC2 endpoint a driver on the stack uses: the stack's proxy to moto.
func (s *Stack) Endpoint() string { return s.Proxy.URL }

// logf reports stack progress on stderr (tests and the CLI both show it).
func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
