package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The real-boot AMIs: an instance launched with one of them is not played by the
// stack but boots for real: systemd and cloud-init in a Debian 12 root filesystem
// without Docker, with the instance's user data as its NoCloud seed (see bootReal).
const (
	DebianAMI = "ami-0deb1200000000001"
	// DebianDaemonJSONAMI ships an /etc/docker/daemon.json of its own
	// (RealAMIDaemonJSON), which the worker's merge must keep.
	DebianDaemonJSONAMI = "ami-0deb1200000000002"
	// DebianNoPackagesAMI's package source is down: installing Docker fails.
	DebianNoPackagesAMI = "ami-0deb1200000000003"
	// DebianPrivilegedAMI's Docker, once cloud-init installs it, starts
	// `--privileged` containers as an EC2 worker's does: its daemon.json makes the
	// stack's runtime (privrunc, runc less what systemd-nspawn cannot grant) the
	// default, which the worker's merge keeps.
	DebianPrivilegedAMI = "ami-0deb1200000000004"
)

// privilegedRuntimeJSON is DebianPrivilegedAMI's own daemon.json.
const privilegedRuntimeJSON = `{"runtimes": {"` + privilegedRuntime + `": {"path": "/usr/local/sbin/ec2x-privrunc"}}, "default-runtime": "` + privilegedRuntime + `"}` + "\n"

// RealAMIDaemonJSON is DebianDaemonJSONAMI's own daemon.json.
const RealAMIDaemonJSON = "{\n  \"labels\": [\"ami=debian12-stack\"],\n  \"log-level\": \"warn\"\n}\n"

type realAMI struct {
	files        map[string]string
	packagesDown bool
	privileged   bool // the stack's runtime at /usr/local/sbin/ec2x-privrunc
}

var realAMIs = map[string]realAMI{
	DebianAMI:           {},
	DebianDaemonJSONAMI: {files: map[string]string{"/etc/docker/daemon.json": RealAMIDaemonJSON}},
	DebianNoPackagesAMI: {packagesDown: true},
	DebianPrivilegedAMI: {files: map[string]string{"/etc/docker/daemon.json": privilegedRuntimeJSON}, privileged: true},
}

// realWorker is one really booting instance: its root filesystem (an overlay over
// the cached one), its network namespace (only lo: what it reaches, the stack
// forwards into it), and systemd-nspawn running its systemd.
type realWorker struct {
	id, dir, root, ns string
	logs              string
	nspawn            *proc
	closers           []io.Closer
	started           time.Time
}

// realNetnsPrefix names the really booting workers' network namespaces.
const realNetnsPrefix = "ec2xr-"

// bootReal boots the instance for real. What cloud-init needs from outside, the
// stack serves inside the namespace: its package proxy on aptProxyAddr and its
// registries on their usual addresses; the instance's sshd is reached on its
// private IP's port 22, which the stack forwards into the namespace.
func (b *Booter) bootReal(ctx context.Context, id, ip string, ami realAMI, userData []byte) (*realWorker, error) {
	base, err := RealRoot(ctx)
	if err != nil {
		return nil, err
	}
	rw := &realWorker{id: id, dir: filepath.Join(b.s.Dir, "boot", id, "real"), ns: realNetnsPrefix + id[len(id)-8:],
		logs: filepath.Join(b.s.Dir, "logs"), started: time.Now()}
	rw.root = filepath.Join(rw.dir, "root")
	if err := rw.mount(base); err != nil {
		return rw, err
	}
	if err := rw.seed(ip, ami, userData); err != nil {
		return rw, err
	}
	if ami.privileged {
		if err := copyIn(rw.root, b.s.privrunc, "/usr/local/sbin/ec2x-privrunc"); err != nil {
			return rw, err
		}
	}
	if err := b.connect(rw, ip, ami.packagesDown); err != nil {
		return rw, err
	}
	p, err := b.s.startWrapped("real-"+id, []string{"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1"}, nil, nspawnArgs(rw, b.s.jobsAPIDir())...)
	if err != nil {
		return rw, err
	}
	rw.nspawn = p
	return rw, nil
}

// nspawnArgs boots the worker's systemd. Docker needs, inside: CAP_NET_ADMIN (its
// bridges and iptables, in the worker's own namespace), the unified cgroup hierarchy
// (nspawn's v1 controllers are read-only), keyctl and bpf (runc's session keyring
// and device filter) and a /var/lib/docker that is not on overlayfs. The stack's
// routes (JobsAPIMount) are bound in at their host path, so job containers on the
// worker reach the jobs API, Git, S3 and the registry as on the stack's other
// workers.
func nspawnArgs(rw *realWorker, routes string) []string {
	return []string{"systemd-nspawn", "--directory", rw.root, "--boot", "--register=no", "--keep-unit",
		"--machine", rw.id, "--network-namespace-path", "/run/netns/" + rw.ns,
		"--bind", filepath.Join(rw.dir, "docker") + ":/var/lib/docker", "--bind", routes,
		"--capability", "CAP_NET_ADMIN", "--system-call-filter", "@keyring bpf"}
}

// copyIn copies the host file src to dst inside root, executable.
func copyIn(root, src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	full := filepath.Join(root, dst)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, 0o755)
}

func (rw *realWorker) mount(base string) error {
	for _, d := range []string{"upper", "work", "root", "docker"} {
		if err := os.MkdirAll(filepath.Join(rw.dir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base, filepath.Join(rw.dir, "upper"), filepath.Join(rw.dir, "work"))
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, rw.root).CombinedOutput(); err != nil {
		return fmt.Errorf("mounting the worker's root filesystem: %s", out)
	}
	return nil
}

// seed writes the NoCloud seed (the instance's user data, as EC2's datasource would
// give it) and what the AMI adds.
func (rw *realWorker) seed(ip string, ami realAMI, userData []byte) error {
	files := map[string]string{
		"/var/lib/cloud/seed/nocloud/user-data": string(userData),
		"/var/lib/cloud/seed/nocloud/meta-data": fmt.Sprintf("instance-id: %s\nlocal-hostname: ip-%s\n", rw.id, strings.ReplaceAll(ip, ".", "-")),
	}
	for p, c := range ami.files {
		files[p] = c
	}
	for p, c := range files {
		if err := writeIn(rw.root, p, c, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// connect makes the worker's namespace and what crosses it: the package proxy and
// the registries inside, its sshd on ip:22 outside.
func (b *Booter) connect(rw *realWorker, ip string, packagesDown bool) error {
	for _, args := range [][]string{{"ip", "netns", "add", rw.ns}, {"ip", "-n", rw.ns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s", strings.Join(args, " "), out)
		}
	}
	path := "/run/netns/" + rw.ns
	l, err := listenIn(path, aptProxyAddr)
	if err != nil {
		return err
	}
	rw.closers = append(rw.closers, b.s.aptProxy().serveOn(l, packagesDown))
	for _, addr := range []string{RegistryAddr, OpenRegistryAddr} {
		l, err := listenIn(path, addr)
		if err != nil {
			return err
		}
		rw.closers = append(rw.closers, l)
		go forward(l, func() (net.Conn, error) { return net.Dial("tcp", addr) })
	}
	ssh, err := net.Listen("tcp", net.JoinHostPort(ip, "22"))
	if err != nil {
		return fmt.Errorf("listening on the worker's address: %w", err)
	}
	rw.closers = append(rw.closers, ssh)
	go forward(ssh, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return dialIn(ctx, path, "127.0.0.1:22")
	})
	return nil
}

// exec runs argv inside the worker, as root, and returns its output.
func (rw *realWorker) exec(argv ...string) ([]byte, error) {
	pid := rw.initPid()
	if pid == 0 {
		return nil, fmt.Errorf("%s is not running", rw.id)
	}
	args := append([]string{"-t", strconv.Itoa(pid), "-a"}, argv...)
	return exec.Command("nsenter", args...).CombinedOutput()
}

// initPid is the worker's systemd (nspawn's child), or 0.
func (rw *realWorker) initPid() int {
	if rw.nspawn == nil {
		return 0
	}
	return firstChild(rw.nspawn.cmd.Process.Pid)
}

// firstChild is a process's first child, or 0.
func firstChild(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	n, _ := strconv.Atoi(first)
	return n
}

// stop powers the worker off, as a termination does: nspawn halts its systemd, and
// whatever is left in its PID namespace dies with that namespace's init. Its
// cloud-init log is kept in the stack's logs; its disk is deleted.
func (rw *realWorker) stop() {
	if out, err := os.ReadFile(filepath.Join(rw.root, "var/log/cloud-init-output.log")); err == nil {
		_ = os.WriteFile(filepath.Join(rw.logs, "real-"+rw.id+"-cloud-init-output.log"), out, 0o600)
	}
	if rw.nspawn != nil {
		init := rw.initPid()
		rw.nspawn.stop(15 * time.Second)
		if init > 0 {
			_ = syscall.Kill(init, syscall.SIGKILL)
			for i := 0; i < 50 && syscall.Kill(init, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	for _, c := range rw.closers {
		_ = c.Close()
	}
	_ = exec.Command("umount", "--lazy", rw.root).Run()
	_ = exec.Command("ip", "netns", "delete", rw.ns).Run()
	_ = os.RemoveAll(rw.dir)
}

// RealRunning lists the instances booted for real that still run.
func (b *Booter) RealRunning() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id, rw := range b.real {
		if rw != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// RealExec runs argv as root inside a worker booted for real (nsenter), for tests
// that look at what its boot did.
func (b *Booter) RealExec(id string, argv ...string) ([]byte, error) {
	b.mu.Lock()
	rw := b.real[id]
	b.mu.Unlock()
	if rw == nil {
		return nil, fmt.Errorf("%s is not booted for real", id)
	}
	return rw.exec(argv...)
}

// removeStaleRealBoots powers off the really booting workers an earlier stack left
// behind (killed before it could): their nspawn, the systemd under it and their
// namespaces; unmountStale then takes down their root filesystems.
func removeStaleRealBoots() {
	stale := pidsRunning(func(cmdline []byte) bool {
		return bytes.HasPrefix(cmdline, []byte("systemd-nspawn\x00")) && bytes.Contains(cmdline, []byte("/run/netns/"+realNetnsPrefix))
	})
	for _, pid := range stale {
		logf("stack: stopping a real-boot worker left by an earlier stack (pid %d)", pid)
		if init := firstChild(pid); init > 0 {
			_ = syscall.Kill(init, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, realNetnsPrefix) {
			_ = exec.Command("ip", "netns", "del", name).Run()
		}
	}
}
