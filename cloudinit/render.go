package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxUserData is EC2's limit on user data before base64 encoding.
const MaxUserData = 16 * 1024

// The worker's boot markers, kept on its disk so that a worker stopped and started
// again (a stopped pool's) still has them: cloud-init runs its runcmd once per
// instance. ReadyFile is written once Docker answers with its final daemon.json
// (Debian's docker.io starts Docker as it installs, before the merge restarts it);
// FailedFile collects the boot steps that failed, with their last lines.
const (
	WorkerStateDir = "/var/lib/ec2-executor-worker"
	ReadyFile      = WorkerStateDir + "/ready"
	FailedFile     = WorkerStateDir + "/failed"
	// EarlierReadyFile is where earlier versions wrote ReadyFile (in /run, so it was
	// lost when a stopped worker started again).
	EarlierReadyFile = "/run/ec2-executor/ready"
)

// Login is a worker's SSH user and its own keys: everything that differs between
// workers (and between the launch indexes of a batch).
type Login struct {
	// User is the dedicated SSH user, created in group docker.
	User string
	// AuthorizedKey is the per-instance client public key, authorized_keys format.
	AuthorizedKey string
	// HostPrivateKey and HostPublicKey are the per-instance ed25519 host key pair the
	// driver pins (OpenSSH PEM and authorized_keys format).
	HostPrivateKey string
	HostPublicKey  string
}

// Placeholder is a worker with stand-in keys, for showing operators what a worker
// would get without generating secrets.
func Placeholder(user string) Login {
	return Login{User: user,
		AuthorizedKey:  "ssh-ed25519 AAAA-PER-INSTANCE-CLIENT-KEY ec2-executor",
		HostPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n(per-instance host key, generated at prepare)\n-----END OPENSSH PRIVATE KEY-----\n",
		HostPublicKey:  "ssh-ed25519 AAAA-PER-INSTANCE-HOST-KEY ec2-executor"}
}

func (w Login) check() error {
	var errs []error
	if w.User == "" {
		errs = append(errs, errors.New("user is empty"))
	}
	if !strings.HasPrefix(w.AuthorizedKey, "ssh-ed25519 ") {
		errs = append(errs, errors.New("authorized key is not an ssh-ed25519 public key"))
	}
	if !strings.Contains(w.HostPrivateKey, "BEGIN OPENSSH PRIVATE KEY") {
		errs = append(errs, errors.New("host private key is not an OpenSSH private key"))
	}
	if !strings.HasPrefix(w.HostPublicKey, "ssh-ed25519 ") {
		errs = append(errs, errors.New("host public key is not an ssh-ed25519 public key"))
	}
	return errors.Join(errs...)
}

// Render returns the #cloud-config for one worker, or an error if the operator's
// additions conflict with it or it would not fit EC2's user-data limit.
func Render(w Login, o Options) ([]byte, error) {
	if err := w.check(); err != nil {
		return nil, fmt.Errorf("rendering cloud-config: %w", err)
	}
	doc, err := document(w, o)
	if err != nil {
		return nil, fmt.Errorf("rendering cloud-config: %w", err)
	}
	out, err := encode(doc, o.ExtraCloudConfig)
	if err != nil {
		return nil, fmt.Errorf("rendering cloud-config: %w", err)
	}
	if len(out) > MaxUserData {
		return nil, fmt.Errorf("rendered cloud-config is %d bytes, over EC2's %d-byte user-data limit", len(out), MaxUserData)
	}
	return out, nil
}

// encode writes a #cloud-config document with the operator's extra part merged in.
func encode(doc any, extra string) ([]byte, error) {
	var node yaml.Node
	if err := node.Encode(doc); err != nil {
		return nil, err
	}
	if err := mergeExtra(&node, extra); err != nil {
		return nil, fmt.Errorf("worker.extra_cloud_config: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString("#cloud-config\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
