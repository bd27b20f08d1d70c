package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/client"
)

// sharedDockerSock is the machine's dockerd, which workers without their own share.
const sharedDockerSock = "/var/run/docker.sock"

// dockerClient talks to the machine's shared dockerd.
func dockerClient() (*client.Client, error) { return dockerClientAt(sharedDockerSock) }

func dockerClientAt(sock string) (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
}

// dockerPings reports whether the dockerd on sock answers within a second.
func dockerPings(ctx context.Context, sock string) bool {
	c, err := dockerClientAt(sock)
	if err != nil {
		return false
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = c.Ping(pctx)
	return err == nil
}

// privilegedRuntime names the OCI runtime (cmd/privrunc) every dockerd of the stack
// runs containers with, so that `--privileged` works here as on an EC2 worker.
const privilegedRuntime = "ec2x-runc"

// runtimeFlags make privrunc the dockerd's default runtime.
func (s *Stack) runtimeFlags() []string {
	return []string{"--add-runtime", privilegedRuntime + "=" + s.privrunc, "--default-runtime", privilegedRuntime}
}

// ensureDockerd starts the machine's dockerd when none answers (this machine kind has
// none running at first), with the stack's runtime; a dockerd the stack starts is
// stopped with it. One that was already running is used as it is, and privileged
// containers on it work only if it has the runtime (Privileged says).
func (s *Stack) ensureDockerd(ctx context.Context) error {
	bin, err := buildTool("privrunc")
	if err != nil {
		return err
	}
	s.privrunc = filepath.Join(s.Dir, "bin", "privrunc")
	if err := os.MkdirAll(filepath.Dir(s.privrunc), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.privrunc, bin, 0o755); err != nil {
		return err
	}
	ping := func() bool { return dockerPings(ctx, sharedDockerSock) }
	if !ping() {
		p, err := s.start("dockerd", nil, append([]string{"/usr/sbin/dockerd"}, s.runtimeFlags()...)...)
		if err != nil {
			return err
		}
		if err := waitFor(ctx, p, 60*time.Second, "dockerd to answer", ping); err != nil {
			return err
		}
	}
	if err := s.checkRuntime(ctx); err != nil {
		logf("stack: %v: privileged containers will fail on it", err)
	}
	return wipeLeftovers(ctx)
}

// checkRuntime records whether the shared dockerd runs containers with privrunc.
func (s *Stack) checkRuntime(ctx context.Context) error {
	dc, err := dockerClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	info, err := dc.Info(ctx)
	if err != nil {
		return err
	}
	if info.DefaultRuntime != privilegedRuntime {
		return fmt.Errorf("the dockerd already running on %s has default runtime %q, not the stack's %s", sharedDockerSock, info.DefaultRuntime, privilegedRuntime)
	}
	s.Privileged = true
	return nil
}
