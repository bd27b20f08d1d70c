package stack

import (
	"context"
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

// ensureDockerd starts the machine's dockerd when none answers (this machine kind has
// none running at first); a dockerd the stack starts is stopped with it.
func (s *Stack) ensureDockerd(ctx context.Context) error {
	ping := func() bool { return dockerPings(ctx, sharedDockerSock) }
	if !ping() {
		p, err := s.start("dockerd", nil, "/usr/sbin/dockerd")
		if err != nil {
			return err
		}
		if err := waitFor(ctx, p, 60*time.Second, "dockerd to answer", ping); err != nil {
			return err
		}
	}
	return wipeLeftovers(ctx)
}
