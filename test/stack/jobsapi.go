package stack

import (
	"context"
	"os"
	"path/filepath"

	"github.com/ec2-executor/ec2-executor/test/gitlabapi"
)

// JobsAPIMount is where job containers find the jobs API's Unix socket (api.sock).
// A container's loopback is its own and the stack opens no port off loopback, so the
// helper image's gitlab-runner-build starts a forwarder (loopfwd) from the port in
// CI_SERVER_URL to this socket.
const JobsAPIMount = "/run/gitlab-api"

// jobsAPIDir is the host directory the stack's settings bind-mount at JobsAPIMount.
func (s *Stack) jobsAPIDir() string { return filepath.Join(s.Dir, "gitlab-api") }

// startJobsAPI starts the stand-in jobs API on loopback and on its socket.
func (s *Stack) startJobsAPI(context.Context) error {
	if err := os.MkdirAll(s.jobsAPIDir(), 0o755); err != nil {
		return err
	}
	sock := filepath.Join(s.jobsAPIDir(), "api.sock")
	_ = os.Remove(sock)
	s.JobsAPI = gitlabapi.New()
	return s.JobsAPI.ServeUnix(sock)
}
