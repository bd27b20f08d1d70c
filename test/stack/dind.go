package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Docker-in-Docker images, built from Debian's docker.io as installed on this
// machine (the same binaries the stack's dockerd runs) and pushed to the registry
// on first use (DockerImages): DindImage is a docker:dind-like service, whose
// entrypoint makes the TLS certificates the way the official image's does;
// DockerCLIImage is a docker:cli-like job image with the docker client.
var (
	DindImage      = RegistryAddr + "/ci/dind:1"
	DockerCLIImage = RegistryAddr + "/ci/docker:1"
)

// dockerBinaries are docker.io's programs a dind service runs, with their libraries.
var dockerBinaries = []string{"/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2",
	"/usr/sbin/runc", "/usr/sbin/docker-proxy", "/usr/bin/docker", "/usr/sbin/xtables-nft-multi", "/usr/bin/openssl"}

// DockerImages builds and pushes DindImage and DockerCLIImage, once per stack.
func (s *Stack) DockerImages(ctx context.Context) error {
	s.dockerImages.Lock()
	defer s.dockerImages.Unlock()
	if s.dockerImagesPushed {
		return nil
	}
	fs, err := dockerRootfs()
	if err != nil {
		return fmt.Errorf("building the docker images: %w", err)
	}
	tarball, err := io.ReadAll(fs.tar())
	if err != nil {
		return err
	}
	images := map[string][]string{
		DindImage: {"ENV DOCKER_TLS_CERTDIR=/certs", "VOLUME /var/lib/docker", "EXPOSE 2375 2376",
			`ENTRYPOINT ["dockerd-entrypoint.sh"]`, "CMD []"},
		DockerCLIImage: {`ENTRYPOINT ["docker-entrypoint.sh"]`, `CMD ["sh"]`},
	}
	for ref, changes := range images {
		changes = append(changes, "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		if err := importAndPush(ctx, ref, tarball, changes); err != nil {
			return err
		}
	}
	s.dockerImagesPushed = true
	return nil
}

// PullBack pulls ref from the stack's registry into the shared dockerd (as a user
// would check what a job pushed) and removes it again.
func PullBack(ctx context.Context, ref string) error {
	dc, auth, err := registryClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	rc, err := dc.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
	}
	if err != nil {
		return fmt.Errorf("pulling %s back: %w", ref, err)
	}
	_, err = dc.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	return err
}

// importAndPush imports a root filesystem tar into the shared dockerd as ref and
// pushes it to the stack's registry.
func importAndPush(ctx context.Context, ref string, tarball []byte, changes []string) error {
	dc, auth, err := registryClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	rc, err := dc.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(tarball), SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	return push(ctx, dc, auth, ref)
}

// dockerRootfs is busybox, docker.io's binaries, iptables (nft) with its
// extensions, openssl, the stack's forwarder and the two entrypoints.
func dockerRootfs() (*rootfs, error) {
	fwd, err := buildTool("loopfwd")
	if err != nil {
		return nil, err
	}
	r := newRootfs()
	if err := r.busybox(); err != nil {
		return nil, err
	}
	for _, b := range dockerBinaries {
		if err := r.hostBinary(b); err != nil {
			return nil, fmt.Errorf("adding %s (Debian's docker.io, iptables and openssl): %w", b, err)
		}
	}
	for _, name := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		r.link("/usr/sbin/"+name, "xtables-nft-multi")
	}
	exts, _ := filepath.Glob("/usr/lib/*/xtables/*.so")
	for _, e := range exts {
		if err := r.hostBinary(e); err != nil {
			return nil, err
		}
	}
	cnf, err := os.ReadFile("/etc/ssl/openssl.cnf")
	if err != nil {
		return nil, err
	}
	r.file("/etc/ssl/openssl.cnf", 0o644, cnf)
	r.link("/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf")
	r.file("/usr/bin/ec2x-loopfwd", 0o755, fwd)
	r.file("/usr/local/bin/dockerd-entrypoint.sh", 0o755, []byte(dockerdEntrypoint))
	r.file("/usr/local/bin/dind", 0o755, []byte(dindScript))
	r.file("/usr/local/bin/docker-entrypoint.sh", 0o755, []byte(dockerEntrypoint))
	for _, d := range []string{"/var/lib/docker/x", "/run/x", "/certs/x"} {
		r.dir(d)
	}
	return r, nil
}

// dockerdEntrypoint is docker:dind's dockerd-entrypoint.sh (docker-library/docker)
// for a root dockerd: with DOCKER_TLS_CERTDIR it makes a CA, a server certificate for
// the container's names and addresses and a client certificate (in
// $DOCKER_TLS_CERTDIR/client, the directory jobs share as a volume) and serves TLS
// on 2376; without it, plain TCP on 2375. First it starts the stack's routes
// (JobsAPIMount), so its dockerd reaches the registry at its loopback address.
const dockerdEntrypoint = `#!/bin/sh
set -eu
for sock in ` + JobsAPIMount + `/*.sock; do
	[ -S "$sock" ] || continue
	/usr/bin/ec2x-loopfwd "$(basename "$sock" .sock)" "$sock" >/dev/null 2>&1 &
done

_tls_ensure_private() {
	[ -s "$1" ] || openssl genrsa -out "$1" 4096
}
_tls_san() {
	{
		for ip in $(hostname -i); do echo "IP:$ip"; done
		echo IP:127.0.0.1
		for name in "$(hostname)" docker localhost; do echo "DNS:$name"; done
		[ -z "${DOCKER_TLS_SAN:-}" ] || echo "$DOCKER_TLS_SAN"
	} | sort -u | xargs printf '%s,' | sed 's/,$//'
}
_tls_generate_certs() {
	dir="$1"
	if [ -s "$dir/server/ca.pem" ] && [ -s "$dir/server/cert.pem" ] && [ -s "$dir/server/key.pem" ] && [ ! -s "$dir/ca/key.pem" ]; then
		openssl verify -CAfile "$dir/server/ca.pem" "$dir/server/cert.pem"
		return 0
	fi
	days=825
	if [ -s "$dir/ca/key.pem" ] || [ ! -s "$dir/ca/cert.pem" ]; then
		mkdir -p "$dir/ca"
		_tls_ensure_private "$dir/ca/key.pem"
		openssl req -new -key "$dir/ca/key.pem" -out "$dir/ca/cert.pem" -subj '/CN=docker:dind CA' -x509 -days "$days"
	fi
	if [ -s "$dir/ca/key.pem" ]; then
		mkdir -p "$dir/server"
		_tls_ensure_private "$dir/server/key.pem"
		openssl req -new -key "$dir/server/key.pem" -out "$dir/server/csr.pem" -subj '/CN=docker:dind server'
		printf '[ x509_exts ]\nsubjectAltName = %s\n' "$(_tls_san)" > "$dir/server/openssl.cnf"
		openssl x509 -req -in "$dir/server/csr.pem" -CA "$dir/ca/cert.pem" -CAkey "$dir/ca/key.pem" -CAcreateserial \
			-out "$dir/server/cert.pem" -days "$days" -extfile "$dir/server/openssl.cnf" -extensions x509_exts
		cp "$dir/ca/cert.pem" "$dir/server/ca.pem"
		openssl verify -CAfile "$dir/server/ca.pem" "$dir/server/cert.pem"

		mkdir -p "$dir/client"
		_tls_ensure_private "$dir/client/key.pem"
		chmod 0644 "$dir/client/key.pem"
		openssl req -new -key "$dir/client/key.pem" -out "$dir/client/csr.pem" -subj '/CN=docker:dind client'
		printf '[ x509_exts ]\nextendedKeyUsage = clientAuth\n' > "$dir/client/openssl.cnf"
		openssl x509 -req -in "$dir/client/csr.pem" -CA "$dir/ca/cert.pem" -CAkey "$dir/ca/key.pem" -CAcreateserial \
			-out "$dir/client/cert.pem" -days "$days" -extfile "$dir/client/openssl.cnf" -extensions x509_exts
		cp "$dir/ca/cert.pem" "$dir/client/ca.pem"
		openssl verify -CAfile "$dir/client/ca.pem" "$dir/client/cert.pem"
	fi
}

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	if [ -n "${DOCKER_TLS_CERTDIR:-}" ]; then
		_tls_generate_certs "$DOCKER_TLS_CERTDIR"
		set -- dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2376 --tlsverify \
			--tlscacert "$DOCKER_TLS_CERTDIR/server/ca.pem" --tlscert "$DOCKER_TLS_CERTDIR/server/cert.pem" \
			--tlskey "$DOCKER_TLS_CERTDIR/server/key.pem" "$@"
	else
		set -- dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 "$@"
	fi
fi
if [ "$1" = dockerd ]; then
	find /run /var/run -iname 'docker*.pid' -delete 2>/dev/null || :
	set -- /usr/local/bin/dind "$@"
fi
exec "$@"
`

// dindScript is moby's hack/dind for a root dockerd in a container: securityfs for
// AppArmor's check, a tmpfs /tmp, and the cgroup v2 nesting the official image does.
const dindScript = `#!/bin/sh
set -e
export container=docker
if [ -d /sys/kernel/security ] && ! mountpoint -q /sys/kernel/security; then
	mount -t securityfs none /sys/kernel/security || echo >&2 'Could not mount /sys/kernel/security.'
fi
if ! mountpoint -q /tmp; then
	mount -t tmpfs none /tmp
fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	mkdir -p /sys/fs/cgroup/init
	xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs || :
	sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control
fi
exec "$@"
`

// dockerEntrypoint is docker:cli's docker-entrypoint.sh: a first argument that is a
// flag or a docker command runs docker, and DOCKER_HOST defaults to the dind
// service's TLS port when its client certificates are there.
const dockerEntrypoint = `#!/bin/sh
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- docker "$@"
fi
if [ -z "${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ] && [ -n "${DOCKER_TLS_CERTDIR:-}" ] && [ -s "$DOCKER_TLS_CERTDIR/client/ca.pem" ]; then
	export DOCKER_HOST=tcp://docker:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$DOCKER_TLS_CERTDIR/client"
fi
exec "$@"
`
