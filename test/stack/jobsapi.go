package stack

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
)

// JobsAPIMount is where job containers find the stack's routes: one Unix socket per
// loopback service they may use, named by the address it stands for
// ("127.0.0.1:5005.sock"). A container's loopback is its own and the stack opens no
// port off loopback, so the helper image's gitlab-runner-build and the dind image's
// entrypoint start a forwarder (loopfwd) from each address to its socket: the
// containers then reach the jobs API and Git, moto's S3 and the registry at the very
// URLs the runner and the job use on the host, as a worker reaches GitLab, S3 and a
// registry over its VPC.
const JobsAPIMount = "/run/gitlab-api"

// jobsAPIDir is the host directory the stack's settings bind-mount at JobsAPIMount.
func (s *Stack) jobsAPIDir() string { return filepath.Join(s.Dir, "gitlab-api") }

// RoutesVolume is the docker.volumes entry that gives job containers the stack's
// routes (the stack's settings have it).
func (s *Stack) RoutesVolume() string { return s.jobsAPIDir() + ":" + JobsAPIMount }

// GitRoot is where the stand-in serves its Git repositories from.
func (s *Stack) GitRoot() string { return filepath.Join(s.Dir, "git") }

// startJobsAPI starts the stand-in jobs API (with Git) on loopback and on its socket,
// and the routes to moto (S3) and the registry.
func (s *Stack) startJobsAPI(context.Context) error {
	if err := os.MkdirAll(s.jobsAPIDir(), 0o755); err != nil {
		return err
	}
	s.JobsAPI = gitlabapi.New()
	s.JobsAPI.ServeGit(s.GitRoot())
	u, err := url.Parse(s.JobsAPI.URL)
	if err != nil {
		return err
	}
	if err := s.JobsAPI.ServeUnix(s.routeSocket(u.Host)); err != nil {
		return err
	}
	for _, addr := range []string{MotoAddr, RegistryAddr} {
		if err := s.route(addr); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) routeSocket(addr string) string {
	return filepath.Join(s.jobsAPIDir(), addr+".sock")
}

// route serves addr's TCP service on its socket in the routes directory.
func (s *Stack) route(addr string) error {
	sock := s.routeSocket(addr)
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("route to %s: %w", addr, err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		l.Close()
		return err
	}
	s.mu.Lock()
	s.routes = append(s.routes, l)
	s.mu.Unlock()
	go forward(l, func() (net.Conn, error) { return net.Dial("tcp", addr) })
	return nil
}
