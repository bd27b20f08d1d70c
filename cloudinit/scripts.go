package cloudinit

import _ "embed"

// Paths on the worker. The fragments are ec2-executor's wishes; the merge script folds
// them into whatever the AMI already has.
const (
	libexecDir         = "/usr/local/libexec/ec2-executor"
	MergeJSONPath      = libexecDir + "/merge-json"
	StepPath           = libexecDir + "/step"
	DaemonFragmentPath = "/etc/ec2-executor/daemon.json"
	ConfigFragmentPath = "/etc/ec2-executor/docker-config.json"
	DaemonJSONPath     = "/etc/docker/daemon.json"
	// JobDockerDir holds the in-job Docker config and JobECRHelper the helper copy.
	JobDockerDir = "/etc/ec2-executor/job-docker"
	JobECRHelper = JobDockerDir + "/bin/docker-credential-ecr-login"
)

//go:embed files/merge-json.py
var mergeJSON string

// stepScript runs a boot step and reports its failure in FailedFile.
//
//go:embed files/step.sh
var stepScript string

// installIfMissing installs package $2 when command $1 is missing, with dnf/yum
// (Amazon Linux) or apt-get (Debian, Ubuntu). $3 names the apt package when it differs.
const installIfMissing = `set -eu
command -v "$1" >/dev/null 2>&1 && exit 0
if command -v dnf >/dev/null 2>&1; then dnf install -y "$2"
elif command -v yum >/dev/null 2>&1; then yum install -y "$2"
elif command -v apt-get >/dev/null 2>&1; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${3:-$2}"
else echo "ec2-executor: no package manager to install $2" >&2; exit 1
fi
`

// applyDaemonJSON merges the daemon fragment and restarts Docker only when the file
// changed and Docker is already running (a pre-baked AMI); otherwise startDocker
// starts it with the merged file.
const applyDaemonJSON = `set -eu
if [ "$(python3 "$1" "$2" "$3" 0644)" = changed ] && systemctl is-active --quiet docker; then
  systemctl restart docker
fi
`

// startDocker enables and starts Docker, then waits until it answers.
const startDocker = `set -eu
systemctl enable --now docker
for i in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null
`

// applyClientConfig merges the Docker client config fragment for root and the SSH user.
const applyClientConfig = `set -eu
python3 "$1" "$2" /root/.docker/config.json 0600 >/dev/null
home=$(getent passwd "$3" | cut -d: -f6)
python3 "$1" "$2" "$home/.docker/config.json" 0600 "$3:$(id -gn "$3")" >/dev/null
`

// markReady writes the readiness marker, but only once Docker answers.
const markReady = `docker info >/dev/null 2>&1 && mkdir -p "$(dirname "$1")" && date -u +%FT%TZ > "$1"`

// copyECRHelper puts the installed ECR helper where the driver mounts it from.
const copyECRHelper = `set -eu
install -D -m 0755 "$(command -v docker-credential-ecr-login)" "$1"
`
