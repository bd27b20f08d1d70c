package cloudinit

// The structs below fix the key order of the rendered YAML, which keeps golden files
// stable and the output readable.

type cloudConfig struct {
	Groups       []string   `yaml:"groups"`
	Users        []any      `yaml:"users"`
	SSHKeys      sshKeys    `yaml:"ssh_keys"`
	SSHDeleteKey bool       `yaml:"ssh_deletekeys"`
	Runcmd       [][]string `yaml:"runcmd"`
}

type user struct {
	Name              string   `yaml:"name"`
	Groups            []string `yaml:"groups"`
	Shell             string   `yaml:"shell"`
	LockPasswd        bool     `yaml:"lock_passwd"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys"`
}

type sshKeys struct {
	Ed25519Private string `yaml:"ed25519_private"`
	Ed25519Public  string `yaml:"ed25519_public"`
}

// installDocker installs and starts Docker only when the AMI lacks it, on Amazon Linux
// (dnf/yum) and Debian/Ubuntu (apt-get), then waits for the daemon to answer before
// the readiness marker is written.
const installDocker = `set -eu
if ! command -v docker >/dev/null 2>&1; then
  if command -v dnf >/dev/null 2>&1; then dnf install -y docker
  elif command -v yum >/dev/null 2>&1; then yum install -y docker
  elif command -v apt-get >/dev/null 2>&1; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
  else echo "ec2-executor: no package manager to install Docker" >&2; exit 1
  fi
fi
systemctl enable --now docker
for i in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null
`

const markReady = `mkdir -p "$(dirname "$1")" && date -u +%FT%TZ > "$1"`

func document(w Worker) cloudConfig {
	return cloudConfig{
		// The group must exist before the user is created, even when Docker is
		// installed later by runcmd.
		Groups: []string{"docker"},
		Users: []any{
			"default",
			user{
				Name:              w.User,
				Groups:            []string{"docker"},
				Shell:             "/bin/bash",
				LockPasswd:        true,
				SSHAuthorizedKeys: []string{w.AuthorizedKey},
			},
		},
		SSHKeys:      sshKeys{Ed25519Private: w.HostPrivateKey, Ed25519Public: w.HostPublicKey},
		SSHDeleteKey: true,
		Runcmd: [][]string{
			{"sh", "-c", installDocker},
			{"sh", "-c", markReady, "mark-ready", ReadyFile},
		},
	}
}
