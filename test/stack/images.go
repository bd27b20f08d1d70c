package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// rootfs builds an image's root file system as a tar stream from host files.
type rootfs struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	seen map[string]bool
}

func newRootfs() *rootfs {
	r := &rootfs{seen: map[string]bool{}}
	r.tw = tar.NewWriter(&r.buf)
	return r
}

func (r *rootfs) dir(path string) {
	for p := filepath.Dir(path); p != "/" && p != "." && !r.seen[p]; p = filepath.Dir(p) {
		r.dir(p)
		r.seen[p] = true
		_ = r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: 0o755})
	}
}

func (r *rootfs) file(path string, mode int64, data []byte) {
	r.dir(path)
	r.seen[path] = true
	_ = r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: mode, Size: int64(len(data))})
	_, _ = r.tw.Write(data)
}

func (r *rootfs) link(path, target string) {
	r.dir(path)
	r.seen[path] = true
	_ = r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(path, "/"), Linkname: target, Mode: 0o777})
}

// hostBinary copies a host executable and the shared libraries ldd lists for it.
func (r *rootfs) hostBinary(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r.file(path, 0o755, data)
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil // static binary
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if !strings.HasPrefix(f, "/") || r.seen[f] {
				continue
			}
			real, err := filepath.EvalSymlinks(f)
			if err != nil {
				return err
			}
			lib, err := os.ReadFile(real)
			if err != nil {
				return err
			}
			r.file(f, 0o755, lib)
		}
	}
	return nil
}

// gitCore adds git's programs and scripts (/usr/lib/git-core): the HTTP transport
// the runner clones with, and git-submodule with the scripts it sources. Programs
// that are git itself become links to /usr/bin/git.
func (r *rootfs) gitCore() error {
	const dir = "/usr/lib/git-core"
	git, err := os.Stat("/usr/bin/git")
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := os.Lstat(p)
		switch {
		case err != nil:
			return err
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			r.link(p, target)
		case os.SameFile(info, git):
			r.link(p, "/usr/bin/git")
		case isELF(p):
			return r.hostBinary(p)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r.file(p, int64(info.Mode().Perm()), data)
		}
		return nil
	})
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == "\x7fELF"
}

// busybox installs busybox-static with a symlink for every applet it has.
func (r *rootfs) busybox() error {
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	r.file("/bin/busybox", 0o755, data)
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if p := "/bin/" + applet; !r.seen[p] {
			r.link(p, "busybox")
		}
	}
	r.file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"))
	r.file("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	// /tmp is world-writable with the sticky bit, as in every distribution's image.
	r.seen["/tmp"] = true
	_ = r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	r.dir("/root/x")
	return nil
}

func (r *rootfs) tar() io.Reader { _ = r.tw.Close(); return &r.buf }

// jobRootfs is a busybox-only image: no bash, so the build container falls back to sh.
func jobRootfs() (*rootfs, error) {
	r := newRootfs()
	return r, r.busybox()
}

// helperRootfs is the helper image: bash, git and sh like GitLab's, the real
// gitlab-runner-helper, and the forwarder that gives its containers a route to the
// stand-in jobs API (loopfwd).
func helperRootfs() (*rootfs, error) {
	bin, err := os.ReadFile(RealHelperBinary())
	if err != nil {
		return nil, fmt.Errorf("no gitlab-runner-helper for the helper image (`make gitlab-runner` builds it): %w", err)
	}
	fwd, err := buildTool("loopfwd")
	if err != nil {
		return nil, err
	}
	r := newRootfs()
	if err := r.busybox(); err != nil {
		return nil, err
	}
	for _, b := range []string{"/bin/bash", "/usr/bin/git"} {
		if err := r.hostBinary(b); err != nil {
			return nil, fmt.Errorf("adding %s: %w", b, err)
		}
	}
	if err := r.gitCore(); err != nil {
		return nil, err
	}
	r.file("/usr/bin/gitlab-runner-helper", 0o755, bin)
	r.file("/usr/bin/ec2x-loopfwd", 0o755, fwd)
	r.file("/usr/bin/gitlab-runner-build", 0o755, []byte(runnerBuild))
	return r, nil
}

// runnerBuild is gitlab-runner-build as in GitLab's helper image (umask 0000, then
// the shell reads the script), after the routes to the stack's services when the
// job's settings bind-mount them at JobsAPIMount.
const runnerBuild = `#!/bin/bash
umask 0000
` + startRoutes + `exec /bin/bash
`

// startRoutes forwards each address in JobsAPIMount to its socket, and waits until
// they answer (a forwarder already running from an earlier stage keeps the port).
const startRoutes = `for sock in ` + JobsAPIMount + `/*.sock; do
	[ -S "$sock" ] || continue
	hostport=$(basename "$sock" .sock)
	/usr/bin/ec2x-loopfwd "$hostport" "$sock" >/dev/null 2>&1 &
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}") 2>/dev/null && break; sleep 0.02; done
done
`

// buildTool builds one of the stack's commands (test/stack/cmd/NAME) as a static
// binary and returns it.
func buildTool(name string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "ec2x-"+name)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, name)
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = filepath.Dir(self)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %v: %s", name, err, b)
	}
	return os.ReadFile(out)
}

// publishedRootfs is an image as images are published: its own entrypoint (which
// says it ran and exports a variable) and a non-root user with a home.
func publishedRootfs() (*rootfs, error) {
	r := newRootfs()
	if err := r.busybox(); err != nil {
		return nil, err
	}
	r.file("/entrypoint.sh", 0o755, []byte("#!/bin/sh\necho \"published entrypoint ran as $(id -u)\" >&2\nexport FROM_ENTRYPOINT=yes\nexec \"$@\"\n"))
	r.dir("/home/app") // its parent
	r.seen["/home/app"] = true
	_ = r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "home/app/", Mode: 0o755, Uid: 1000, Gid: 1000})
	return r, nil
}

// serviceRootfs is a busybox image whose httpd answers on port 8080.
func serviceRootfs() (*rootfs, error) {
	r := newRootfs()
	if err := r.busybox(); err != nil {
		return nil, err
	}
	r.file("/www/index.html", 0o644, []byte("service-ok\n"))
	return r, nil
}

// pushImages builds the test images from host binaries, imports them into the shared
// dockerd and pushes them to the htpasswd registry.
func (s *Stack) pushImages(ctx context.Context) error {
	images := map[string]func() (*rootfs, error){JobImage: jobRootfs, HelperImage: helperRootfs, ServiceImage: serviceRootfs,
		PublishedImage: publishedRootfs}
	for ref, build := range images {
		fs, err := build()
		if err != nil {
			return fmt.Errorf("building %s: %w", ref, err)
		}
		changes := []string{`CMD ["sh"]`}
		switch ref {
		case ServiceImage:
			changes = []string{`CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]`, "EXPOSE 8080"}
		case PublishedImage:
			changes = []string{`ENTRYPOINT ["/entrypoint.sh"]`, `CMD ["sh"]`, "USER 1000", "WORKDIR /home/app"}
		}
		tarball, err := io.ReadAll(fs.tar())
		if err != nil {
			return err
		}
		if err := importAndPush(ctx, ref, tarball, changes); err != nil {
			return err
		}
	}
	dc, auth, err := registryClient()
	if err != nil {
		return err
	}
	defer dc.Close()
	if err := pushAs(ctx, dc, auth, JobImage, mirrorUpstream); err != nil {
		return err
	}
	if err := pushAs(ctx, dc, auth, HelperImage, VersionedHelperImage()); err != nil {
		return err
	}
	if err := pushAs(ctx, dc, auth, JobImage, RegistryAddr+"/"+ECRRepository+":1"); err != nil {
		return err
	}
	// A Docker Hub-style name that exists only in the shared dockerd (used with pull
	// policy never, so nothing ever tries Docker Hub).
	if err := dc.ImageTag(ctx, ServiceImage, LocalServiceImage); err != nil {
		return fmt.Errorf("tagging %s: %w", LocalServiceImage, err)
	}
	return nil
}

// registryClient is a client of the shared dockerd and the X-Registry-Auth header
// that logs it in to the stack's registry.
func registryClient() (*client.Client, string, error) {
	auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: RegistryUser, Password: RegistryPassword, ServerAddress: RegistryAddr})
	if err != nil {
		return nil, "", err
	}
	dc, err := dockerClient()
	return dc, auth, err
}

// pushAs pushes an image under a second name.
func pushAs(ctx context.Context, dc *client.Client, auth, ref, as string) error {
	if err := dc.ImageTag(ctx, ref, as); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", ref, as, err)
	}
	return push(ctx, dc, auth, as)
}

// push pushes ref to the stack's registry and waits for the push to end.
func push(ctx context.Context, dc *client.Client, auth, ref string) error {
	rc, err := dc.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
	}
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
