package stack

import (
	"context"
	"time"

	"github.com/docker/docker/client"
)

// dockerClient talks to the machine's shared dockerd on /var/run/docker.sock.
func dockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost("unix:///var/run/docker.sock"), client.WithAPIVersionNegotiation())
}

// ensureDockerd starts the machine's dockerd when none answers (this machine kind has
// none running at first); a dockerd the stack starts is stopped with it.
func (s *Stack) ensureDockerd(ctx context.Context) error {
	dc, err := dockerClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	ping := func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := dc.Ping(c)
		return err == nil
	}
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
