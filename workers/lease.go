package workers

import (
	"time"

	"github.com/ec2-executor/ec2-executor/engine"
)

// How a job got its worker.
const (
	SourceLaunch = "launch" // a cold RunInstances for this job
	SourcePool   = "pool"   // claimed from the pool, ready before the job asked
)

// Lease is a job's hold on one worker: enough to reach it and to give it back. Its
// JSON is part of the job's 0600 state file, since ClientKey is the worker's only
// way in.
type Lease struct {
	InstanceID string `json:"instance_id,omitempty"`
	Address    string `json:"address,omitempty"` // host:port of the worker's sshd
	SSHUser    string `json:"ssh_user"`
	ClientKey  string `json:"client_key"` // secret
	HostKey    string `json:"host_key"`   // pinned host public key
	Source     string `json:"source,omitempty"`
	// Type, Zone and Spot describe the worker, for what it cost the job.
	Type string `json:"type,omitempty"`
	Zone string `json:"zone,omitempty"`
	Spot bool   `json:"spot,omitempty"`
}

// target says how to reach the lease's worker; deadline bounds the wait for it.
func (f *Fleet) target(l Lease, deadline time.Duration) engine.Target {
	return engine.Target{Addr: l.Address, User: l.SSHUser, ClientKey: l.ClientKey, HostKey: l.HostKey,
		Deadline: deadline, RetryInterval: f.s.SSH.RetryInterval.Duration}
}
